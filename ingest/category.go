package ingest

import (
	"regexp"
	"strings"
	"unicode/utf8"
)

// Category is what a human reply says about the prospect's interest
// (docs/sequences.md#reply-categories, docs/ingest.md#reply-categories).
type Category string

// Reply categories.
const (
	Interested    Category = "interested"
	NotInterested Category = "not_interested"
	NotNow        Category = "not_now"
	Referral      Category = "referral"
	WrongPerson   Category = "wrong_person"
	Question      Category = "question"
	Uncategorized Category = "uncategorized"
)

// Categories lists every reply category.
var Categories = []Category{Interested, NotInterested, NotNow, Referral, WrongPerson, Question, Uncategorized}

// Valid reports whether c is a known category.
func (c Category) Valid() bool {
	for _, k := range Categories {
		if c == k {
			return true
		}
	}
	return false
}

// Evidence is what decided a category: the phrase as it stands in the
// (lower-cased) reply, its language and the rule's category. A correction
// by an operator or a CRM carries no phrase: its rule is "corrected".
type Evidence struct {
	Phrase   string `json:"phrase,omitempty"`
	Language string `json:"language,omitempty"`
	Rule     string `json:"rule"`
	// Previous is the category a correction replaced (rule "corrected").
	Previous string `json:"previous,omitempty"`
}

// maxCategoryRead is how much of a reply's new text the lexicon reads.
const maxCategoryRead = 4 << 10

// lexicon is one category's phrases per language. Phrases are lower case
// with single spaces; they match whole words. Redirect phrases (referral
// only) count only when the next word is not the writer ("contact me",
// "fale comigo" are no referral).
type lexicon struct {
	category Category
	phrases  map[string][]string
	redirect map[string][]string
}

// languages are the seven languages of the lexicon, in evidence order.
var languages = []string{"en", "de", "fr", "es", "pt", "nl", "sv"}

// The lexicon, in precedence order: the first category with a phrase in
// the reply decides. A referral names someone else and comes before the
// plain "wrong person"; "not now" comes before "not interested" (not
// interested right now is a timing answer) and both before "interested"
// (whose phrases a negation also contains); a question is what is left
// when a reply asks something.
var lexicons = []lexicon{
	{category: Referral, phrases: map[string][]string{
		"en": {"my colleague", "a colleague of mine", "the right person is", "the right person would be", "the best person to talk to", "the person you want is", "a better person to", "i've cc'd", "i have cc'd", "cc'd my", "cc'ing", "looping in", "i've forwarded", "i have forwarded", "forwarded your email to", "handles this for us", "is the one to talk to"},
		"de": {"mein kollege", "meine kollegin", "meinen kollegen", "meiner kollegin", "der richtige ansprechpartner ist", "die richtige ansprechpartnerin ist", "richtige ansprechpartner wäre", "in kopie gesetzt", "in cc gesetzt", "ihre e-mail weitergeleitet", "ihre mail weitergeleitet", "habe sie weitergeleitet an"},
		"fr": {"mon collègue", "ma collègue", "mon collegue", "ma collegue", "la bonne personne est", "le bon interlocuteur est", "je vous mets en copie", "je mets en copie", "j'ai transféré votre", "j'ai transmis votre"},
		"es": {"mi compañero", "mi compañera", "mi colega", "la persona adecuada es", "la persona indicada es", "le pongo en copia", "te pongo en copia", "he reenviado su", "he reenviado tu", "reenvié su correo"},
		"pt": {"meu colega", "minha colega", "a pessoa certa é", "a pessoa indicada é", "coloquei em cópia", "coloquei em copia", "encaminhei seu e-mail", "encaminhei o seu", "encaminhei sua mensagem"},
		"nl": {"mijn collega", "de juiste persoon is", "de juiste contactpersoon is", "in de cc gezet", "in cc gezet", "je mail doorgestuurd", "uw mail doorgestuurd", "heb het doorgestuurd naar"},
		"sv": {"min kollega", "rätt person är", "rätt kontaktperson är", "satt i kopia", "har vidarebefordrat", "vidarebefordrat ditt"},
	}, redirect: map[string][]string{
		"en": {"please contact", "please reach out to", "you should contact", "you should talk to", "you should speak to", "get in touch with", "talk to", "speak to", "speak with"},
		"de": {"wenden sie sich an", "wende dich an", "melden sie sich bei", "sprechen sie mit", "kontaktieren sie"},
		"fr": {"contactez plutôt", "adressez-vous à", "voyez avec", "contactez"},
		"es": {"contacte con", "contacta con", "hable con", "habla con", "escriba a"},
		"pt": {"fale com", "entre em contato com", "procure o", "procure a"},
		"nl": {"neem contact op met", "neem contact met", "spreek met", "mail naar"},
		"sv": {"kontakta istället", "hör av dig till", "hör av er till", "prata med", "vänd dig till"},
	}},
	{category: WrongPerson, phrases: map[string][]string{
		"en": {"not the right person", "wrong person", "not the best person", "not the correct person", "not the right contact", "no longer work", "no longer with", "i have left the company", "i've left the company", "i left the company", "not my area", "not my department", "not responsible for", "i don't handle", "i do not handle"},
		"de": {"nicht der richtige ansprechpartner", "nicht die richtige ansprechpartnerin", "nicht die richtige person", "nicht zuständig", "falsche person", "falschen ansprechpartner", "nicht mehr bei", "nicht mehr im unternehmen", "habe das unternehmen verlassen", "arbeite nicht mehr"},
		"fr": {"pas la bonne personne", "pas le bon interlocuteur", "pas la bonne interlocutrice", "ne suis pas concerné", "ne suis pas concernée", "ne travaille plus", "j'ai quitté", "pas de mon ressort"},
		"es": {"no soy la persona", "persona equivocada", "no soy el responsable", "no soy la responsable", "ya no trabajo", "dejé la empresa", "no me corresponde"},
		"pt": {"não sou a pessoa", "nao sou a pessoa", "pessoa errada", "não sou o responsável", "não sou a responsável", "não trabalho mais", "saí da empresa", "não é comigo"},
		"nl": {"niet de juiste persoon", "niet de juiste contactpersoon", "verkeerde persoon", "werk hier niet meer", "niet meer werkzaam", "heb het bedrijf verlaten", "niet verantwoordelijk voor"},
		"sv": {"inte rätt person", "fel person", "inte rätt kontaktperson", "jobbar inte kvar", "arbetar inte längre", "har slutat på", "inte ansvarig för"},
	}},
	{category: NotNow, phrases: map[string][]string{
		"en": {"next month", "in a month", "not right now", "not now", "not at the moment", "not at this time", "not this quarter", "not this year", "not interested right now", "not interested at the moment", "maybe later", "maybe next", "next quarter", "next year", "in a few months", "in a couple of months", "in six months", "later this year", "check back", "circle back", "reach out again", "get back to me in", "try me again", "ask me again", "bad timing", "timing isn't right", "timing is not right", "not the right time", "no budget", "too busy right now", "after the holidays", "after the summer", "early next"},
		"de": {"nächsten monat", "nicht jetzt", "momentan nicht", "derzeit nicht", "aktuell nicht", "zurzeit nicht", "zur zeit nicht", "im moment nicht", "später noch einmal", "später nochmal", "später wieder", "nächstes quartal", "nächsten quartal", "nächstes jahr", "nächsten jahr", "in ein paar monaten", "in einigen monaten", "kein budget", "gerade keine zeit", "nach dem sommer", "nach den feiertagen", "anfang nächsten"},
		"fr": {"le mois prochain", "pas maintenant", "pas pour le moment", "pas en ce moment", "pas pour l'instant", "plus tard", "trimestre prochain", "prochain trimestre", "l'année prochaine", "l'an prochain", "dans quelques mois", "revenez vers moi", "recontactez-moi dans", "pas de budget", "après l'été", "à la rentrée", "pas le bon moment"},
		"es": {"el mes que viene", "el próximo mes", "ahora no", "no por ahora", "por ahora no", "de momento no", "en este momento no", "más adelante", "mas adelante", "próximo trimestre", "proximo trimestre", "el próximo año", "el año que viene", "dentro de unos meses", "en unos meses", "vuelva a contactarme", "vuelve a escribirme", "sin presupuesto", "no tenemos presupuesto", "no es buen momento", "después del verano"},
		"pt": {"mês que vem", "próximo mês", "agora não", "agora nao", "não agora", "no momento não", "por enquanto não", "mais tarde", "mais para frente", "próximo trimestre", "próximo ano", "ano que vem", "daqui a alguns meses", "em alguns meses", "volte a falar", "sem orçamento", "não é um bom momento"},
		"nl": {"volgende maand", "nu niet", "niet nu", "op dit moment niet", "momenteel niet", "voorlopig niet", "later dit jaar", "volgend kwartaal", "volgend jaar", "in het nieuwe jaar", "over een paar maanden", "over enkele maanden", "neem later contact", "geen budget", "geen goed moment", "na de zomer"},
		"sv": {"nästa månad", "inte nu", "inte just nu", "inte i dagsläget", "för tillfället inte", "inte för tillfället", "senare i år", "nästa kvartal", "nästa år", "om några månader", "hör av dig igen", "ingen budget", "inte rätt tid", "efter sommaren"},
	}},
	{category: NotInterested, phrases: map[string][]string{
		"en": {"not interested", "no interest", "no thanks", "no thank you", "not for us", "not a fit", "not a good fit", "we're all set", "we are all set", "we already have", "we already use", "we're happy with", "we are happy with our", "don't need", "do not need", "not looking for", "we'll pass", "we will pass", "i'll pass", "not something we need"},
		"de": {"kein interesse", "nicht interessiert", "nein danke", "nein, danke", "brauchen wir nicht", "benötigen wir nicht", "haben bereits eine", "nutzen bereits", "sind zufrieden mit", "passt nicht zu uns", "kein bedarf"},
		"fr": {"pas intéressé", "pas intéressée", "pas intéressés", "pas interesse", "aucun intérêt", "non merci", "non, merci", "nous avons déjà", "nous sommes satisfaits", "pas besoin", "ne nous intéresse pas", "ne m'intéresse pas"},
		"es": {"no me interesa", "no nos interesa", "no estoy interesado", "no estoy interesada", "no estamos interesados", "sin interés", "no, gracias", "no gracias", "ya tenemos", "estamos contentos con", "no lo necesitamos", "no necesitamos"},
		"pt": {"não tenho interesse", "não temos interesse", "nao tenho interesse", "não estou interessado", "não estou interessada", "não estamos interessados", "sem interesse", "não, obrigado", "não obrigado", "não, obrigada", "já temos", "estamos satisfeitos", "não precisamos"},
		"nl": {"geen interesse", "niet geïnteresseerd", "niet geinteresseerd", "nee bedankt", "nee, bedankt", "nee dank je", "hebben al een", "zijn tevreden met", "hebben we niet nodig", "niet nodig"},
		"sv": {"inte intresserad", "inte intresserade", "inget intresse", "nej tack", "nej, tack", "har redan en", "är nöjda med", "behöver inte", "inget behov"},
	}},
	{category: Interested, phrases: map[string][]string{
		"en": {"i'm interested", "i am interested", "we're interested", "we are interested", "interested", "sounds good", "sounds great", "sounds interesting", "let's talk", "let's chat", "let's set up", "let's schedule", "happy to chat", "happy to talk", "happy to hop on", "love to learn more", "like to learn more", "tell me more", "send me more", "more information", "book a call", "book a meeting", "set up a call", "set up a meeting", "schedule a call", "what time works", "when are you free", "my calendar", "works for me", "count me in", "yes please"},
		"de": {"interessiert", "interessant", "klingt gut", "klingt spannend", "gerne mehr", "mehr erfahren", "mehr informationen", "lassen sie uns sprechen", "lass uns sprechen", "telefonieren", "termin vereinbaren", "einen termin", "wann passt es ihnen", "wann haben sie zeit", "gerne"},
		"fr": {"ça m'intéresse", "cela m'intéresse", "intéressé", "intéressée", "intéressant", "avec plaisir", "volontiers", "parlons-en", "un appel", "un rendez-vous", "un échange", "en savoir plus", "plus d'informations", "quand êtes-vous disponible", "je suis disponible", "ça me va"},
		"es": {"me interesa", "nos interesa", "interesado", "interesada", "suena bien", "suena interesante", "hablemos", "con gusto", "encantado", "encantada", "una llamada", "una reunión", "más información", "mas informacion", "cuándo le viene bien", "cuándo te viene bien", "estoy disponible"},
		"pt": {"tenho interesse", "temos interesse", "interessado", "interessada", "parece bom", "parece interessante", "vamos conversar", "com prazer", "uma ligação", "uma reunião", "mais informações", "estou disponível"},
		"nl": {"geïnteresseerd", "geinteresseerd", "interessant", "klinkt goed", "klinkt interessant", "laten we bellen", "laten we praten", "een afspraak", "een gesprek", "meer informatie", "wanneer schikt het", "ik ben beschikbaar", "graag"},
		"sv": {"intresserad", "intresserade", "låter bra", "låter intressant", "ett samtal", "ett möte", "mer information", "när passar det", "jag är ledig", "gärna"},
	}},
	{category: Question, phrases: map[string][]string{
		"en": {"how much", "what does it cost", "pricing", "price", "how does it work", "how does this work", "can you explain"},
		"de": {"wie viel", "wieviel", "was kostet", "preis", "preise", "wie funktioniert"},
		"fr": {"combien", "quel est le prix", "tarif", "tarifs", "comment ça marche", "comment cela fonctionne"},
		"es": {"cuánto cuesta", "cuanto cuesta", "precio", "precios", "cómo funciona", "como funciona"},
		"pt": {"quanto custa", "preço", "preços", "como funciona"},
		"nl": {"hoeveel kost", "wat kost", "prijs", "prijzen", "hoe werkt"},
		"sv": {"vad kostar", "hur mycket", "pris", "priser", "hur fungerar"},
	}},
}

// bareNo are whole replies that are a plain no, per language.
var bareNo = map[string]string{"no": "en", "nope": "en", "nein": "de", "non": "fr", "não": "pt", "nao": "pt", "nee": "nl", "nej": "sv"}

// selfWords are the words after a redirect phrase that point back at the
// writer ("contact me", "talk to us again"): no referral.
var selfWords = map[string]bool{"me": true, "us": true, "again": true, "back": true, "mich": true, "uns": true, "moi": true,
	"nous": true, "conmigo": true, "nosotros": true, "comigo": true, "conosco": true, "mij": true, "ons": true, "mig": true, "oss": true}

// negators before an "interested" phrase turn it around ("not really
// interested", "nicht wirklich interessiert").
var negators = map[string]bool{"not": true, "no": true, "never": true, "don't": true, "isn't": true, "aren't": true, "nicht": true,
	"kein": true, "keine": true, "pas": true, "jamais": true, "nunca": true, "não": true, "nao": true, "niet": true, "geen": true,
	"inte": true, "ej": true, "aldrig": true}

type compiled struct {
	lang     string
	re       *regexp.Regexp
	redirect bool
}

var compiledLexicons = func() [][]compiled {
	out := make([][]compiled, len(lexicons))
	for i, lx := range lexicons {
		for _, lang := range languages {
			if ps := lx.phrases[lang]; len(ps) > 0 {
				out[i] = append(out[i], compiled{lang: lang, re: phraseRegexp(ps)})
			}
			if ps := lx.redirect[lang]; len(ps) > 0 {
				out[i] = append(out[i], compiled{lang: lang, re: phraseRegexp(ps), redirect: true})
			}
		}
	}
	return out
}()

// phraseRegexp matches any of the phrases as whole words; group 1 is the
// phrase. Longer phrases are tried first.
func phraseRegexp(phrases []string) *regexp.Regexp {
	alts := make([]string, len(phrases))
	for i, p := range phrases {
		alts[i] = strings.ReplaceAll(regexp.QuoteMeta(p), " ", `\s+`)
	}
	return regexp.MustCompile(`(?:^|[^\p{L}\p{N}'])(` + strings.Join(alts, "|") + `)(?:[^\p{L}\p{N}]|$)`)
}

// normalizeReply lower-cases a reply and folds typographic apostrophes
// and spaces, so the phrases need one spelling each.
func normalizeReply(s string) string {
	s = strings.ToLower(truncate(s, maxCategoryRead))
	s = strings.NewReplacer("\u2019", "'", "\u2018", "'", "\u00a0", " ", "\u202f", " ").Replace(s)
	return strings.Join(strings.Fields(s), " ")
}

// Categorize reads the new text of a human reply (quoted history already
// stripped: Message.NewText) and returns its category with the phrase that
// decided it. The categories are tried in precedence order (referral,
// wrong_person, not_now, not_interested, interested, question); within a
// category the phrase that comes first in the reply is the evidence. A
// reply that is only "no" is not_interested; one that asks a question
// ("?") and says nothing else the lexicon knows is a question; anything
// else is uncategorized.
func Categorize(text string) (Category, Evidence) {
	t := normalizeReply(text)
	if lang, ok := bareNo[strings.Trim(t, " .!")]; ok {
		return NotInterested, Evidence{Phrase: strings.Trim(t, " .!"), Language: lang, Rule: string(NotInterested)}
	}
	for i, lx := range lexicons {
		best, phrase, lang := -1, "", ""
		for _, c := range compiledLexicons[i] {
			at, p := firstMatch(c, t, lx.category)
			if at >= 0 && (best < 0 || at < best) {
				best, phrase, lang = at, p, c.lang
			}
		}
		if best >= 0 {
			return lx.category, Evidence{Phrase: phrase, Language: lang, Rule: string(lx.category)}
		}
	}
	if q := strings.IndexByte(t, '?'); q >= 0 {
		return Question, Evidence{Phrase: questionSentence(t, q), Rule: string(Question)}
	}
	return Uncategorized, Evidence{Rule: string(Uncategorized)}
}

// firstMatch is the first acceptable match of c in t: its offset and
// phrase, or -1.
func firstMatch(c compiled, t string, cat Category) (int, string) {
	for _, m := range c.re.FindAllStringSubmatchIndex(t, -1) {
		start, end := m[2], m[3]
		if c.redirect && selfWords[nextWord(t[end:])] {
			continue
		}
		if cat == Interested && negated(t[:start]) {
			continue
		}
		return start, t[start:end]
	}
	return -1, ""
}

// nextWord is the first word of s.
func nextWord(s string) string {
	f := strings.Fields(s)
	if len(f) == 0 {
		return ""
	}
	return strings.Trim(f[0], ".,;:!?")
}

// negated reports whether one of the two words before a phrase negates it.
func negated(before string) bool {
	f := strings.Fields(before)
	for i := len(f) - 1; i >= 0 && i >= len(f)-2; i-- {
		if negators[strings.Trim(f[i], ".,;:!?")] {
			return true
		}
	}
	return false
}

// questionSentence is the sentence of t that ends at the question mark at
// q, at most 120 bytes.
func questionSentence(t string, q int) string {
	start := strings.LastIndexAny(t[:q], ".!?\n") + 1
	s := strings.TrimSpace(t[start : q+1])
	for len(s) > 120 {
		_, size := utf8.DecodeRuneInString(s)
		s = s[size:]
	}
	return s
}
