package ingest

import (
	"regexp"
	"strconv"
	"strings"

	"github.com/dripdrop/dripdrop/smtpreply"
)

// maxPhraseRead is how much new text the phrase rules read.
const maxPhraseRead = 16 << 10

// Classification is what a message means.
type Classification struct {
	Intent Intent
	// Bounce is "hard" or "soft" for bounces.
	Bounce string
	// Status, DiagnosticCode and Recipient describe the (first failed)
	// recipient of a bounce; Recipient is also the complained-about
	// address of a complaint when the report names it.
	Status         string
	DiagnosticCode string
	Recipient      string
	// FeedbackType is the ARF feedback type of a complaint.
	FeedbackType string
	// ReturnDate is the stated return day of an out-of-office reply.
	ReturnDate    Date
	HasReturnDate bool
	// Fault is whose failure a bounce reports (docs/ingest.md#whose-failure):
	// FaultRecipient, the prospect's address or mailbox — a hard one
	// suppresses the address and stops the enrollment; or FaultSender, the
	// sending adapter, its domain or its IP (authentication, DMARC, a
	// blocked IP, content or reputation rejections, routing) — the
	// prospect is kept and the adapter's health counts it. FaultReason is
	// smtpreply's reason (auth_rejected, policy_rejected, bad_mailbox, …).
	Fault       string
	FaultReason string
	// OriginalMessageID is the Message-ID of our message quoted inside a
	// bounce or complaint (the last correlation candidate).
	OriginalMessageID string
	// Signal names what decided the intent (for humans and tests).
	Signal string
}

// Whose failure a bounce reports.
const (
	FaultRecipient = string(smtpreply.FaultRecipient)
	FaultSender    = string(smtpreply.FaultSender)
)

// Signals.
const (
	SignalDSNSuccess   = "dsn_not_failure" // a success, relayed or delayed report: no bounce
	SignalChallenge    = "challenge_response"
	SignalGiven        = "given"
	SignalDSN          = "dsn"
	SignalARF          = "arf"
	SignalBounceText   = "bounce_text"
	SignalAutoHeader   = "auto_header"
	SignalAutoSubject  = "auto_subject"
	SignalUnsubscribe  = "unsubscribe_phrase"
	SignalDefaultReply = "default"
)

var (
	enhancedCode = regexp.MustCompile(`(?:^|[\s#(\[;:<"'=-])([245])\.(\d{1,3})\.(\d{1,3})\b`)
	giveUp       = regexp.MustCompile(`(?i)(i'm not going to try again|i've given up|this is a permanent error|permanent failure|permanently failed)`)
	copyMarker   = regexp.MustCompile(`(?im)^.*(below this line is a copy of the message|this is a copy of the message|original message follows|undelivered message follows|-{3,} ?original message ?-{3,}).*$`)
	basicCode    = regexp.MustCompile(`(?m)(?:^|said:\s*|:\s|\s)([45][0-7]\d)(?:[ \-:]|$)`)

	bounceSubject = regexp.MustCompile(`(?i)(undeliver|undelivered mail|delivery status notification|delivery failure|failure notice|mail delivery failed|returned mail|delivery has failed|could not be delivered|not delivered|delivery notification|mail delivery system|delayed mail|delivery delayed|unzustellbar|nicht zugestellt|non remis|non distribuable|no se puede entregar|no entregado|não entregue|nao entregue|onbestelbaar|kan niet worden bezorgd|kunde inte levereras|olevererbart|returned to sender)`)
	permanentText = regexp.MustCompile(`(?i)(permanent error|permanent failure|i'm not going to try again|i've given up|this is a permanent error|user unknown|no such user|mailbox unavailable|does not exist|doesn't have a .{1,40} account|address rejected|recipient not found|invalid recipient|account (has been )?disabled|mailbox not found)`)
	temporaryText = regexp.MustCompile(`(?i)(delayed|will (keep )?(re)?try|still trying|not yet been delivered|temporar(y|ily)|will be retried|retry timeout|try again later)`)
)

// autoSubject marks machine-written replies in the seven languages.
var autoSubject = regexp.MustCompile(`(?i)^\s*(automatic reply|auto[- ]?reply|autoreply|auto[- ]?response|automatische antwort|automatische rückantwort|réponse automatique|reponse automatique|respuesta automática|respuesta automatica|resposta automática|resposta automatica|automatisch antwoord|automatiskt svar|autosvar)\b`)

// oooSubject marks out-of-office subjects.
var oooSubject = regexp.MustCompile(`(?i)(out of (the )?office|\booo\b|abwesenheit|abwesend|außer haus|ausser haus|absent|absence|fuera de la oficina|fuera de oficina|ausente|ausencia|fora do escritório|fora do escritorio|ausência|ausencia|férias|afwezig|afwezigheid|niet op kantoor|frånvarande|frånvaro|på semester|vacation|on holiday|on leave|urlaub|vacances|congés|vacaciones|vakantie|semester)`)

// oooPhrases mark out-of-office text (subject or new body text).
var oooPhrases = regexp.MustCompile(`(?i)(out of (the )?office|\booo\b|on (vacation|holiday|leave|annual leave|parental leave|maternity leave|paternity leave|sick leave|a business trip)|away from (the|my) (office|desk)|currently (away|out)|i am away|i'm away|i am out|i'm out|will be out|limited access to (my )?e-?mail|no access to (my )?e-?mail|be back (on|in)|back in the office|return(ing)? to the office|i will return|i return on|abwesend|abwesenheit|nicht im büro|außer haus|ausser haus|im urlaub|in urlaub|urlaub|elternzeit|dienstreise|geschäftsreise|bin .{0,40}zurück|travell?ing|business trip|en déplacement|de viaje|estoy de baja|em viagem|op reis|tjänsteresa|är ledig|nicht erreichbar|wieder im büro|wieder erreichbar|absent|absente|absence|en congé|en conges|en vacances|hors du bureau|de retour|fuera de la oficina|fuera de oficina|de vacaciones|ausente|ausencia|estaré fuera|estare fuera|no estoy en la oficina|regresaré|regresare|volveré|volvere|fora do escritório|fora do escritorio|de férias|em férias|ausência|estarei fora|estarei de volta|retornarei|licença|afwezig|afwezigheid|niet op kantoor|buiten kantoor|met vakantie|op vakantie|verlof|weer aanwezig|ben ik terug|frånvarande|frånvaro|inte på kontoret|borta från kontoret|på semester|tjänstledig|föräldraledig|åter på kontoret|tillbaka på kontoret|är tillbaka|är åter)`)

// unsubscribePhrases are explicit requests to stop e-mailing.
var unsubscribePhrases = regexp.MustCompile(`(?i)(\bunsubscribe\b|remove me from|take me off|please remove me|remove my (e-?mail|address)|stop (e-?mailing|emailing|sending|contacting) me|do not (contact|e-?mail) me|don't (contact|e-?mail) me|opt(ing)? out|abmelden|austragen|entfernen sie mich|keine (weiteren )?e-?mails mehr|nicht mehr kontaktieren|désabonner|desabonner|désinscrire|desinscrire|retirez-moi|ne plus recevoir|ne me contactez plus|darme de baja|dar de baja|no me (envíe|envie|escriba)|elimíne?me|quítenme|descadastrar|descadastre|cancelar (a )?inscrição|remover (meu e-?mail|da lista)|não quero (mais )?receber|nao quero (mais )?receber|tragen sie mich .{0,40}aus\b|melden sie mich .{0,20}ab\b|aus (ihrem|dem|ihrer) (verteiler|liste|mailingliste)|me retirer de|(darme|denme|dame|deme) de baja|no quiero recibir más|no quiero recibir mas|afmelden|uitschrijven|verwijder mij|verwijder me|geen e-?mails meer|avregistrera|avprenumerera|avsluta prenumeration|ta bort mig|sluta skicka|sluta maila)`)

// Classify decides the intent of a message: a DSN is a bounce
// (hard for 5.x.x, soft for 4.x.x), an ARF report a complaint, an
// auto-submitted message (RFC 3834 Auto-Submitted ≠ no, X-Autoreply,
// X-Autorespond, Precedence auto_reply|bulk|junk, or an automatic-reply
// subject) an ooo when its subject or new text says out-of-office and an
// auto_reply otherwise, an explicit unsubscribe request an unsubscribe,
// anything else a reply. Only the new text is read: quoted history is
// stripped first.
func Classify(m *Message) Classification {
	m = capped(m)
	c := Classification{}
	if m.Report != nil {
		c.OriginalMessageID = m.Report.OriginalMessageID
		switch m.Report.Type {
		case "delivery-status":
			if notFailure(m.Report) {
				c.Intent, c.Signal = AutoReply, SignalDSNSuccess
				return c
			}
			if challengeText.MatchString(truncate(m.Subject+"\n"+m.BodyText+"\n"+diagnostics(m.Report), 32<<10)) {
				c.Intent, c.Signal = AutoReply, SignalChallenge
				return c
			}
			c.Intent, c.Signal = Bounce, SignalDSN
			c.fromDSN(m)
			c.decideFault()
			return c
		case "feedback-report":
			c.Intent, c.Signal = Complaint, SignalARF
			c.FeedbackType, c.Recipient = m.Report.FeedbackType, m.Report.OriginalRecipient
			return c
		}
	}
	ct := strings.ToLower(m.Header("Content-Type"))
	switch {
	case strings.Contains(ct, "report-type=feedback-report") || strings.Contains(ct, `report-type="feedback-report"`):
		c.Intent, c.Signal = Complaint, SignalARF
		c.OriginalMessageID = embeddedMessageID(m)
		return c
	case isComplaintNotice(m):
		c.Intent, c.Signal = Complaint, SignalComplaintNotice
		c.FeedbackType, c.Recipient = "abuse", complaintRecipient(m)
		c.OriginalMessageID = complaintOriginalID(m)
		return c
	case strings.Contains(ct, "report-type=delivery-status") || strings.Contains(ct, `report-type="delivery-status"`) || isTextBounce(m):
		if challengeText.MatchString(truncate(m.Subject+"\n"+m.BodyText, 32<<10)) {
			c.Intent, c.Signal = AutoReply, SignalChallenge
			return c
		}
		c.Intent, c.Signal = Bounce, SignalBounceText
		c.bounceFromText(m.BodyText + "\n" + HTMLToText(m.BodyHTML))
		c.decideFault()
		c.OriginalMessageID = embeddedMessageID(m)
		c.Recipient = failedRecipient(m)
		return c
	}
	text := truncate(m.NewText(), maxPhraseRead) // a reply's own words come first
	head := m.Subject + "\n" + text
	auto, signal := autoSubmitted(m), SignalAutoHeader
	if !auto && (autoSubject.MatchString(m.Subject) || oooSubject.MatchString(stripRe(m.Subject))) {
		auto, signal = true, SignalAutoSubject
	}
	// An explicit unsubscribe request wins over the auto-submitted rule (a
	// request sent by a form or client that marks its mail auto-submitted
	// still asks us to stop); an out-of-office note that mentions opting
	// out is still an ooo.
	ooo := auto && (oooSubject.MatchString(m.Subject) || oooPhrases.MatchString(head))
	if unsubscribePhrases.MatchString(stripRe(m.Subject)) || !auto && unsubscribePhrases.MatchString(text) || auto && !ooo && explicitUnsubscribe(text) {
		c.Intent, c.Signal = Unsubscribe, SignalUnsubscribe
		return c
	}
	if auto {
		c.Signal = signal
		if ooo {
			c.Intent = OOO
			c.ReturnDate, c.HasReturnDate = returnDate(head, m.ReceivedAt, m.Header("Content-Language"))
			return c
		}
		c.Intent = AutoReply
		return c
	}
	c.Intent, c.Signal = Reply, SignalDefaultReply
	return c
}

// Complete fills in what a given intent needs (bounce type, return date)
// from the message, for inputs that state the intent themselves.
func Complete(m *Message, intent Intent) Classification {
	m = capped(m)
	c := Classify(m)
	if c.Intent == intent {
		c.Signal = SignalGiven
		return c
	}
	out := Classification{Intent: intent, Signal: SignalGiven, OriginalMessageID: c.OriginalMessageID}
	switch intent {
	case Bounce:
		out.bounceFromText(m.BodyText + "\n" + m.Subject)
		if m.Report != nil {
			out.fromDSN(m)
		}
		out.decideFault()
	case OOO:
		out.ReturnDate, out.HasReturnDate = returnDate(m.Subject+"\n"+m.NewText(), m.ReceivedAt, m.Header("Content-Language"))
	case Complaint:
		out.FeedbackType, out.Recipient = c.FeedbackType, c.Recipient
	}
	return out
}

var rePrefix = regexp.MustCompile(`(?i)^\s*((re|aw|sv|vs|antw|rv|res|ref|tr|wg|fw|fwd)\s*:\s*)+`)

// stripRe removes reply prefixes, so "Re: Out of office policy" in a human
// subject still reads as the human's words only when the prefix is gone.
func stripRe(s string) string {
	if rePrefix.MatchString(s) {
		return "" // a reply to our own subject: our words, not the sender's
	}
	return s
}

// autoSubmitted reads the RFC 3834 and de-facto auto-reply headers.
func autoSubmitted(m *Message) bool {
	if v := strings.ToLower(m.Header("Auto-Submitted")); v != "" && v != "no" {
		return true
	}
	for _, h := range []string{"X-Autoreply", "X-Autorespond", "X-Autoresponder", "X-Autoreply-From"} {
		if m.Header(h) != "" {
			return true
		}
	}
	switch strings.ToLower(m.Header("Precedence")) {
	case "auto_reply", "bulk", "junk":
		return true
	}
	return false
}

// isTextBounce recognises bounces that are not RFC 3464 reports (qmail,
// Yahoo, classic Exim): sent by a mailer daemon or with a null return
// path, with a bounce subject or an SMTP failure in the body.
func isTextBounce(m *Message) bool {
	local := strings.ToLower(m.From)
	if i := strings.IndexByte(local, '@'); i >= 0 {
		local = local[:i]
	}
	daemon := local == "mailer-daemon" || local == "postmaster" || local == "mail-daemon" || local == "mailer_daemon" ||
		strings.TrimSpace(m.Header("Return-Path")) == "<>" || m.From == ""
	subject := bounceSubject.MatchString(m.Subject)
	body := truncate(m.BodyText, 32<<10)
	if body == "" {
		body = HTMLToText(m.BodyHTML)
	}
	failure := permanentText.MatchString(body) || enhancedCode.MatchString(body) || strings.Contains(strings.ToLower(body), "below this line is a copy of the message")
	return (daemon && (subject || failure)) || (subject && failure && !rePrefix.MatchString(m.Subject))
}

func (c *Classification) fromDSN(m *Message) {
	var first *RecipientStatus
	hard, soft := false, false
	for i := range m.Report.Recipients {
		r := &m.Report.Recipients[i]
		class := statusClass(r.Status)
		if class == 0 {
			class = codeClass(r.DiagnosticCode)
		}
		if class == 0 {
			switch r.Action {
			case "failed":
				class = 5
			case "delayed":
				class = 4
			}
		}
		switch class {
		case 5:
			if !hard {
				first = r
			}
			hard = true
		case 4:
			if !hard && !soft {
				first = r
			}
			soft = true
		}
	}
	c.Bounce = "soft"
	if hard || (!soft && first == nil) {
		c.Bounce = "hard"
	}
	if first == nil && len(m.Report.Recipients) > 0 {
		first = &m.Report.Recipients[0]
	}
	if first != nil {
		c.Status, c.DiagnosticCode, c.Recipient = first.Status, first.DiagnosticCode, first.Recipient
	}
	if first == nil || (c.Status == "" && c.DiagnosticCode == "") {
		c.bounceFromText(m.BodyText)
		if hard {
			c.Bounce = "hard"
		}
	}
}

// bounceFromText reads the first SMTP failure of a plain-text bounce:
// enhanced status codes, then basic reply codes, then wording.
func (c *Classification) bounceFromText(text string) {
	text = truncate(text, 64<<10)
	if loc := copyMarker.FindStringIndex(text); loc != nil {
		text = text[:loc[0]] // the returned message is not the report
	}
	defer func() {
		if c.Bounce == "soft" && giveUp.MatchString(text) {
			c.Bounce = "hard" // the sender gave up: a 4.x.x that became permanent
		}
	}()
	for _, m := range enhancedCode.FindAllStringSubmatchIndex(text, 10) {
		if class := text[m[2]:m[3]]; class != "2" {
			c.Status = text[m[2]:m[7]]
			c.Bounce = map[string]string{"5": "hard", "4": "soft"}[class]
			c.DiagnosticCode = lineAround(text, m[2])
			return
		}
	}
	if m := basicCode.FindStringSubmatchIndex(text); m != nil {
		code := text[m[2]:m[3]]
		c.Bounce = map[byte]string{'5': "hard", '4': "soft"}[code[0]]
		c.DiagnosticCode = lineAround(text, m[2])
		return
	}
	switch {
	case permanentText.MatchString(text):
		c.Bounce = "hard"
	case temporaryText.MatchString(text):
		c.Bounce = "soft"
	default:
		c.Bounce = "hard"
	}
}

func statusClass(s string) int {
	if len(s) >= 2 && s[1] == '.' {
		switch s[0] {
		case '5':
			return 5
		case '4':
			return 4
		}
	}
	return 0
}

func codeClass(diag string) int {
	if m := enhancedCode.FindStringSubmatch(diag); m != nil {
		return int(m[1][0] - '0')
	}
	if m := basicCode.FindStringSubmatch(diag); m != nil {
		return int(m[1][0] - '0')
	}
	return 0
}

func lineAround(text string, i int) string {
	if i < 0 {
		return ""
	}
	start := strings.LastIndexByte(text[:i], '\n') + 1
	end := strings.IndexByte(text[i:], '\n')
	if end < 0 {
		end = len(text) - i
	}
	return truncate(strings.TrimSpace(text[start:i+end]), 1000)
}

// failedRecipient is the failed address of a text bounce
// (recipients.go): X-Failed-Recipients (Exim, Gmail), the first
// "<address>:" line (qmail, Yahoo) or a sentence naming it, else the
// single To of the enclosed original; only addr-specs count.
func failedRecipient(m *Message) string { return textBounceRecipient(m) }

// embeddedMessageID finds the Message-ID of the returned message inside a
// text bounce: an enclosed message/rfc822 or text/rfc822-headers part,
// else the pasted copy ("--- Below this line is a copy of the message.").
func embeddedMessageID(m *Message) string { return originalMessageID(m) }

// decideFault applies the whose-failure rule shared with SMTP-time failures
// (smtpreply.ClassifyStatus) to the bounce's status and diagnostic: a
// failure of the address or mailbox is the recipient's, and its severity
// decides hard or soft (a full mailbox, 5.2.2 with over-quota text, is
// soft); every other failure — authentication, DMARC/SPF/DKIM, a blocked IP
// or domain, spam content, reputation, routing and system errors — is the
// sender's.
func (c *Classification) decideFault() {
	enhanced, _ := parseEnhanced(c.Status)
	st := smtpreply.ClassifyStatus(enhanced, c.DiagnosticCode)
	switch st.Fault {
	case smtpreply.FaultSender:
		c.Fault, c.FaultReason = FaultSender, st.Reason
	case smtpreply.FaultRecipient:
		c.Fault, c.FaultReason = FaultRecipient, st.Reason
		if st.Severity != "" {
			c.Bounce = st.Severity
		}
	default:
		// No status to go by (wording only): the address's.
		c.Fault = FaultRecipient
	}
	if st.Severity == "" && c.Fault == FaultSender && c.Bounce == "" {
		c.Bounce = "hard"
	}
}

// parseEnhanced reads "5.1.1" into its three parts.
func parseEnhanced(s string) ([3]int, bool) {
	parts := strings.SplitN(strings.TrimSpace(s), ".", 3)
	if len(parts) != 3 {
		return [3]int{}, false
	}
	var out [3]int
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || n > 999 {
			return [3]int{}, false
		}
		out[i] = n
	}
	if out[0] != 2 && out[0] != 4 && out[0] != 5 {
		return [3]int{}, false
	}
	return out, true
}

// notFailure reports a delivery report that announces no failure: every
// recipient delivered, relayed, expanded or (still) delayed, or a 2.x.x
// status. Such reports are never bounces.
func notFailure(r *Report) bool {
	if len(r.Recipients) == 0 {
		return false
	}
	for _, rc := range r.Recipients {
		switch strings.ToLower(strings.TrimSpace(rc.Action)) {
		case "delivered", "relayed", "expanded", "delayed":
			continue
		case "failed":
			return false
		}
		if statusClass(rc.Status) == 0 && strings.HasPrefix(strings.TrimSpace(rc.Status), "2.") {
			continue
		}
		return false
	}
	return true
}

// challengeText marks challenge-response notices ("confirm you are a human
// to complete delivery"): the recipient's filter asks the sender to prove
// itself. They are never bounces.
var challengeText = regexp.MustCompile(`(?i)(challenge[- ]response|verify (that )?you are (a )?(human|real)|confirm (that )?you are (a )?(human|real person)|prove (that )?you are (a )?human|sender verification (request|required)|to complete (the )?delivery,? (please )?(click|reply|verify|confirm)|whitelist request|added to (my|the) (whitelist|approved senders)|approve your (e-?mail|message)|boxbe|spam ?arrest|mailchannels verification)`)

// diagnostics are a report's per-recipient diagnostic codes, one a line.
func diagnostics(r *Report) string {
	var b strings.Builder
	for _, rc := range r.Recipients {
		b.WriteString(rc.DiagnosticCode)
		b.WriteByte('\n')
	}
	return b.String()
}

// AutoReplySubject reports whether a subject reads like an automatic reply
// or an out-of-office note in one of the languages Classify knows; mailbox
// sync uses it to decide from the envelope alone whether a message from an
// enrolled contact is worth reading whole.
func AutoReplySubject(subject string) bool {
	return autoSubject.MatchString(subject) || oooSubject.MatchString(stripRe(subject))
}
