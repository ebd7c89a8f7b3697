package main

import (
	"fmt"
	"strings"
)

// quoteStyles write the quoted history of a reply the way mail clients do.
func quoteGmail(lang, ourText string) string {
	attr := map[string]string{
		"en": "On Tue, Nov 24, 2026 at 10:00 AM Ada Lovelace <ada@acme.example.com> wrote:",
		"de": "Am Di., 24. Nov. 2026 um 10:00 Uhr schrieb Ada Lovelace <\nada@acme.example.com>:",
		"fr": "Le mar. 24 nov. 2026 à 10:00, Ada Lovelace <ada@acme.example.com> a écrit :",
		"es": "El mar, 24 nov 2026 a las 10:00, Ada Lovelace (<ada@acme.example.com>)\nescribió:",
		"pt": "Em ter., 24 de nov. de 2026 às 10:00, Ada Lovelace <ada@acme.example.com> escreveu:",
		"nl": "Op di 24 nov. 2026 om 10:00 schreef Ada Lovelace <ada@acme.example.com>:",
		"sv": "Den tis 24 nov. 2026 kl 10:00 skrev Ada Lovelace <ada@acme.example.com>:",
	}[lang]
	return attr + "\n\n" + quoteLines(ourText)
}

func quoteLines(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		b.WriteString("> " + l + "\n")
	}
	return b.String()
}

func quoteOutlook(lang, ourText string) string {
	h := map[string][4]string{
		"en": {"From", "Sent", "To", "Subject"}, "de": {"Von", "Gesendet", "An", "Betreff"}, "fr": {"De", "Envoyé", "À", "Objet"},
		"es": {"De", "Enviado", "Para", "Asunto"}, "pt": {"De", "Enviado", "Para", "Assunto"}, "nl": {"Van", "Verzonden", "Aan", "Onderwerp"},
		"sv": {"Från", "Skickat", "Till", "Ämne"},
	}[lang]
	sep := map[string]string{"en": "________________________________", "de": "-----Ursprüngliche Nachricht-----", "fr": "", "es": "", "pt": "", "nl": "", "sv": ""}[lang]
	colon := ":"
	if lang == "fr" {
		colon = " :"
	}
	out := ""
	if sep != "" {
		out = sep + "\n"
	}
	return out + fmt.Sprintf("%s%s Ada Lovelace <ada@acme.example.com>\n%s%s Tuesday, November 24, 2026 10:00 AM\n%s%s Contact\n%s%s %s\n\n%s\n",
		h[0], colon, h[1], colon, h[2], colon, h[3], colon, ourSubject[lang], ourText)
}

// ourMail is the text we sent, with the footer every cold e-mail carries.
var ourMail = map[string]string{
	"en": "Hi,\n\nquick question: who looks after supplier onboarding at your company?\n\nAda\n\nTo unsubscribe from these emails, click here: https://acme.example.com/u/abc",
	"de": "Hallo,\n\nkurze Frage: Wer kümmert sich bei Ihnen um das Lieferanten-Onboarding?\n\nAda\n\nAbmelden: https://acme.example.com/u/abc",
	"fr": "Bonjour,\n\npetite question : qui s'occupe du référencement des fournisseurs chez vous ?\n\nAda\n\nSe désabonner : https://acme.example.com/u/abc",
	"es": "Hola,\n\nuna pregunta: ¿quién se encarga de la incorporación de proveedores?\n\nAda\n\nDarse de baja: https://acme.example.com/u/abc",
	"pt": "Olá,\n\numa pergunta: quem cuida do cadastro de fornecedores na sua empresa?\n\nAda\n\nDescadastrar: https://acme.example.com/u/abc",
	"nl": "Hoi,\n\nkorte vraag: wie regelt bij jullie de onboarding van leveranciers?\n\nAda\n\nAfmelden: https://acme.example.com/u/abc",
	"sv": "Hej,\n\nen snabb fråga: vem ansvarar för leverantörsregistrering hos er?\n\nAda\n\nAvregistrera: https://acme.example.com/u/abc",
}

// ourOOOQuote is an out-of-office text quoted in a human reply.
var oooQuote = map[string]string{
	"en": "I am out of the office until 3 December with limited access to email.",
	"de": "Ich bin bis zum 3. Dezember nicht im Büro.",
	"fr": "Je suis absent du bureau jusqu'au 3 décembre.",
	"es": "Estoy fuera de la oficina hasta el 3 de diciembre.",
	"pt": "Estou fora do escritório até 3 de dezembro.",
	"nl": "Ik ben afwezig tot en met 3 december.",
	"sv": "Jag är på semester till och med den 3 december.",
}

var replyPrefix = map[string]string{"en": "Re: ", "de": "AW: ", "fr": "RE : ", "es": "RE: ", "pt": "Res: ", "nl": "Antw: ", "sv": "SV: "}

var humanTexts = map[string][]string{
	"en": {
		"Hi Ada,\n\nYes, happy to chat. How about Thursday at 2pm?\n\nBest,\nAnn",
		"Not interested, thanks.",
		"Who gave you my address?",
		"Can you send more information about pricing? We're a team of 40.",
		"I'm not the right person - try Tom Hughes in procurement.",
		"Sorry for the slow reply, I was out of the office until today. Let's talk next week.",
		"I'll be on vacation next week, can we talk after the 10th?",
		"Sounds interesting. What does onboarding cost per supplier?",
		"Thanks, but we already have a vendor for this.",
		"Call me on Monday.",
		"Can you share a case study from a company our size?",
		"We might be interested in Q2 - ping me in March.",
	},
	"de": {
		"Hallo Frau Lovelace,\n\nja, gerne. Passt Ihnen Donnerstag um 14 Uhr?\n\nViele Grüße\nJonas Müller",
		"Kein Interesse, danke.",
		"Ich bin nächste Woche im Urlaub, melden Sie sich danach gern noch einmal.",
		"Schicken Sie mir bitte ein Angebot.",
	},
	"fr": {
		"Bonjour,\n\nOui, avec plaisir. Êtes-vous disponible jeudi ?\n\nCordialement,\nCamille",
		"Pas intéressé, merci.",
		"C'est mon collègue Luc qui gère ce sujet, je le mets en copie.",
		"J'étais absente la semaine dernière, pouvons-nous en parler lundi ?",
	},
	"es": {
		"Hola Ada,\n\nSí, me interesa. ¿Podemos hablar el jueves?\n\nSaludos,\nLucía",
		"No me interesa, gracias.",
		"¿Cuánto cuesta para un equipo de 20 personas?",
		"Acabo de volver de vacaciones. ¿Hablamos la semana que viene?",
	},
	"pt": {
		"Olá Ada,\n\nTenho interesse sim. Podemos conversar na quinta?\n\nAbraços,\nJoão",
		"Não tenho interesse, obrigado.",
		"Pode me mandar uma proposta?",
		"Estive de férias, por isso a demora. Vamos conversar?",
	},
	"nl": {
		"Hoi Ada,\n\nJa, laten we donderdag bellen.\n\nGroet,\nSanne",
		"Geen interesse, bedankt.",
		"Wat kost dit per maand?",
		"Ik was afwezig, vandaar de late reactie. Bel me maar.",
	},
	"sv": {
		"Hej Ada,\n\nJa, gärna. Passar torsdag?\n\nHälsningar,\nErik",
		"Inte intresserad, tack.",
		"Vad kostar det?",
		"Jag har varit på semester, men nu är jag tillbaka. Ring mig gärna.",
	},
}

func humans(next func() int) {
	for li, lang := range langs {
		for k, text := range humanTexts[lang] {
			i := next()
			first, last, from, domain := contact(i)
			style := (k + li) % 6
			var full string
			switch style {
			case 0:
				full = text + "\n\n" + quoteGmail(lang, ourMail[lang])
			case 1:
				full = text + "\n\n" + quoteOutlook(lang, ourMail[lang])
			case 2: // quotes an out-of-office text from earlier in the thread
				full = text + "\n\n" + quoteGmail(lang, oooQuote[lang]+"\n\n"+ourMail[lang])
			case 3: // Apple Mail
				full = text + "\n\n> On 24 Nov 2026, at 10:00, Ada Lovelace <ada@acme.example.com> wrote:\n>\n" + quoteLines(ourMail[lang])
			default:
				full = text
			}
			subject := replyPrefix[lang] + ourSubject[lang]
			var content string
			switch {
			case style == 4 || (style == 2 && k%2 == 1): // HTML only, Gmail quote markup
				html := "<div dir=\"ltr\">" + strings.ReplaceAll(text, "\n", "<br>") + "</div><br><div class=\"gmail_quote\"><div dir=\"ltr\" class=\"gmail_attr\">" +
					strings.Split(quoteGmail(lang, ""), "\n\n")[0] + "<br></div><blockquote class=\"gmail_quote\" style=\"margin:0px 0px 0px 0.8ex;border-left:1px solid rgb(204,204,204);padding-left:1ex\">" +
					strings.ReplaceAll(oooQuote[lang]+"\n\n"+ourMail[lang], "\n", "<br>") + "</blockquote></div>"
				if i%2 == 0 {
					content = "Content-Type: text/html; charset=UTF-8\nContent-Transfer-Encoding: quoted-printable\n\n" + qp(html)
				} else {
					content = "Content-Type: text/html; charset=\"UTF-8\"\nContent-Transfer-Encoding: base64\n\n" + b64(html)
				}
			case style == 5: // multipart/alternative
				bnd := fmt.Sprintf("0000000000005a%04x0615b2c7e1", i)
				ct, enc := body(i, full)
				content = fmt.Sprintf("Content-Type: multipart/alternative; boundary=\"%[1]s\"\n\n--%[1]s\n%[2]s\n\n%[3]s\n--%[1]s\nContent-Type: text/html; charset=\"UTF-8\"\n\n<div dir=\"ltr\">%[4]s</div>\n--%[1]s--", bnd, ct, enc, strings.ReplaceAll(text, "\n", "<br>"))
			default:
				ct, enc := body(i, full)
				content = ct + "\n\n" + enc
			}
			msg := fmt.Sprintf(`Return-Path: <%[1]s>
Received: from mail.%[2]s (mail.%[2]s [203.0.113.%[3]d])
	by mail.acme.example.com with ESMTPS id H%[3]d; %[4]s
DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=%[2]s; s=sel1; h=from:to:subject:date:message-id; bh=frcCV1k9oG9oKj3dpUqdJg1PxRT2RSN/XKdLCPjaYaY=; b=dGVzdA==
From: %[5]s <%[1]s>
To: Ada Lovelace <ada@acme.example.com>
Subject: %[6]s
Date: %[4]s
Message-ID: <CAH%[3]dx7Fq+%[7]s@mail.%[2]s>
In-Reply-To: %[8]s
References: %[8]s
MIME-Version: 1.0
%[9]s
`, from, domain, i, date(24+k%3, 9+k, 13+k), first+" "+last, encodeSubject(subject, i), lang, origID(i), content)
			write("human-"+lang, "reply", "", "", origID(i), msg)
		}
	}
}

var unsubTexts = map[string][]string{
	"en": {"Please remove me from your mailing list.", "Stop emailing me.", "Take me off your list, thanks.", "Please do not contact me again."},
	"de": {"Bitte tragen Sie mich aus Ihrem Verteiler aus.", "Bitte melden Sie mich ab."},
	"fr": {"Merci de me désinscrire de votre liste.", "Veuillez me retirer de votre liste de diffusion."},
	"es": {"Por favor, denme de baja de su lista.", "No quiero recibir más correos."},
	"pt": {"Por favor, me descadastre da sua lista.", "Não quero mais receber e-mails."},
	"nl": {"Graag afmelden voor deze mails.", "Verwijder mij alstublieft uit uw mailinglijst."},
	"sv": {"Ta bort mig från er lista.", "Avregistrera mig, tack."},
}

func unsubscribes(next func() int) {
	for li, lang := range langs {
		for k, text := range unsubTexts[lang] {
			i := next()
			first, last, from, domain := contact(i)
			full := text
			if (k+li)%2 == 0 {
				full += "\n\n" + quoteGmail(lang, ourMail[lang])
			}
			ct, enc := body(i, full)
			msg := fmt.Sprintf(`Return-Path: <%[1]s>
Received: from mail.%[2]s ([203.0.113.%[3]d]) by mail.acme.example.com; %[4]s
From: %[5]s <%[1]s>
To: ada@acme.example.com
Subject: %[6]s
Date: %[4]s
Message-ID: <unsub-%[3]d@mail.%[2]s>
In-Reply-To: %[7]s
MIME-Version: 1.0
%[8]s

%[9]s
`, from, domain, i, date(25, 11+k, 20+li), first+" "+last, encodeSubject(replyPrefix[lang]+ourSubject[lang], i), origID(i), ct, enc)
			write("unsubscribe-"+lang, "unsubscribe", "", "", origID(i), msg)
		}
	}
	// A bare "unsubscribe" subject line, as list users send it.
	i := next()
	_, _, from, domain := contact(i)
	write("unsubscribe-subject", "unsubscribe", "", "", "", fmt.Sprintf(`Return-Path: <%[1]s>
From: %[1]s
To: ada@acme.example.com
Subject: unsubscribe
Date: %[2]s
Message-ID: <bare-unsub-%[3]d@%[4]s>
MIME-Version: 1.0
Content-Type: text/plain; charset=us-ascii

`, from, date(26, 8, 0), i, domain))
}
