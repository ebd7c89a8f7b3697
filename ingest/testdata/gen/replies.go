package main

import (
	"fmt"
	"strings"
)

// sample is one hand-written text with its expected label.
type sample struct {
	subject, text, ret string
}

// autoPrefix is the automatic-reply subject prefix of Outlook/Exchange in
// each language.
var autoPrefix = map[string]string{
	"en": "Automatic reply: ", "de": "Automatische Antwort: ", "fr": "Réponse automatique : ", "es": "Respuesta automática: ",
	"pt": "Resposta automática: ", "nl": "Automatisch antwoord: ", "sv": "Automatiskt svar: ",
}

var ourSubject = map[string]string{
	"en": "Quick question", "de": "Kurze Frage", "fr": "Petite question", "es": "Una pregunta rápida",
	"pt": "Uma pergunta rápida", "nl": "Korte vraag", "sv": "En snabb fråga",
}

var oooTexts = map[string][]sample{
	"en": {
		{"", "Thank you for your email. I am out of the office until Monday, 7 December 2026 with limited access to email.\nFor urgent matters please contact my colleague Tom Hughes.\n\nKind regards,\nAnn Baker", "2026-12-07"},
		{"Out of Office", "Hi,\n\nI'm currently on annual leave and will be back on December 3rd. I will reply to your message when I return.\n\nPriya", "2026-12-03"},
		{"", "I am away from the office from 24/11/2026 to 02/12/2026 and will not be checking email.\n\nRegards,\nTom", "2026-12-02"},
		{"Out of office", "I will be out of the office through 12/4/2026 and will respond upon my return.\n\nThank you,\nAnn", "2026-12-05"},
		{"OOO", "Out of office: I'm travelling and will return on 2026-12-01. Responses may be delayed.", "2026-12-01"},
		{"", "I am currently out of the office with limited access to email. I will respond as soon as possible.", ""},
		{"Parental leave", "Hello,\n\nI am on parental leave until January 11, 2027. During this time please contact sales@fabrikam.example.\n\nBest wishes,\nPriya Raman", "2027-01-11"},
		{"", "I'm out of office until Nov 30. Back Dec 1.", "2026-12-01"},
		{"On vacation", "Thanks for reaching out! I am on vacation and returning Monday 30th November. I'll get back to you then.", "2026-11-30"},
	},
	"de": {
		{"", "Sehr geehrte Damen und Herren,\n\nvielen Dank für Ihre Nachricht. Ich bin bis zum 3. Dezember nicht im Büro und habe nur eingeschränkt Zugriff auf meine E-Mails.\nIn dringenden Fällen wenden Sie sich bitte an Frau Schmidt.\n\nMit freundlichen Grüßen\nJonas Müller", "2026-12-03"},
		{"Abwesenheitsnotiz", "Guten Tag,\n\nich bin vom 23.11. bis 04.12.2026 im Urlaub. Ihre E-Mail wird nicht weitergeleitet.\n\nViele Grüße\nMia Schmidt", "2026-12-04"},
		{"", "Vielen Dank für Ihre E-Mail. Ich bin ab dem 7. Dezember 2026 wieder im Büro.", "2026-12-07"},
		{"Abwesend", "Ich befinde mich in Elternzeit bis einschließlich 15.01.2027. Bitte wenden Sie sich an vertrieb@kaufhaus.example.", "2027-01-16"},
		{"", "Ich bin derzeit nicht im Büro. Ihre E-Mail wird nicht weitergeleitet.", ""},
		{"Nicht im Büro", "Hallo,\nich bin bis Montag, den 30. November 2026 außer Haus.\nGruß, Jonas", "2026-11-30"},
		{"Abwesenheitsnotiz", "Ich bin am 1.12. wieder erreichbar.", "2026-12-01"},
		{"", "Ich bin auf Dienstreise und ab 2. Dez. zurück. Ihre Nachricht lese ich danach.", "2026-12-02"},
		{"Urlaub", "Vielen Dank für Ihre E-Mail. Ich bin bis 8. Januar 2027 im Urlaub und lese meine E-Mails nicht.", "2027-01-08"},
	},
	"fr": {
		{"", "Bonjour,\n\nJe suis absent du bureau jusqu'au 3 décembre inclus. Pour toute urgence, merci de contacter Luc Bernard.\n\nCordialement,\nCamille Durand", "2026-12-04"},
		{"Absence", "Bonjour,\n\nJe suis en congés du 24 novembre au 7 décembre 2026. Je serai de retour le 8 décembre.\n\nBien à vous,\nLuc", "2026-12-08"},
		{"", "Je suis actuellement absente et je n'aurai pas accès à mes e-mails. Je reviendrai le lundi 30 novembre.", "2026-11-30"},
		{"Absent du bureau", "Bonjour, je suis en vacances jusqu'au 04/12/2026. Je vous répondrai à mon retour.", "2026-12-04"},
		{"", "Je suis absent du bureau. Pour toute urgence, contactez le standard au 01 23 45 67 89.", ""},
		{"En déplacement", "Merci pour votre message. Je suis en déplacement et serai de retour le 1er décembre.", "2026-12-01"},
		{"", "Absence du bureau jusqu'au 2 déc. 2026. Accès limité aux e-mails.", "2026-12-02"},
		{"Congé maternité", "Bonjour,\nJe suis en congé maternité jusqu'au 15 janvier 2027.\nMerci de votre compréhension.", "2027-01-15"},
		{"", "Je suis absent jusqu'au 2026-12-10. Je traiterai votre demande à mon retour.", "2026-12-10"},
	},
	"es": {
		{"", "Hola,\n\nEstoy fuera de la oficina hasta el 3 de diciembre. Responderé a su correo a mi regreso.\n\nUn saludo,\nLucía García", "2026-12-03"},
		{"Vacaciones", "Estaré de vacaciones del 24 de noviembre al 4 de diciembre de 2026, sin acceso al correo.", "2026-12-04"},
		{"", "Me encuentro fuera de la oficina. Regresaré el lunes 7 de diciembre.\n\nDiego Torres", "2026-12-07"},
		{"Ausente", "Gracias por su correo. Estoy ausente hasta el 01/12/2026.", "2026-12-01"},
		{"", "Actualmente estoy fuera de la oficina con acceso limitado al correo. Le responderé lo antes posible.", ""},
		{"Fuera de la oficina", "Estoy de baja hasta el 15 de enero de 2027. Para cualquier asunto, escriba a ventas@andesmin.example.", "2027-01-15"},
		{"", "Estaré fuera de la oficina hasta el 30 de noviembre.", "2026-11-30"},
		{"Fuera de la oficina", "Volveré a la oficina el 2 de dic. Gracias por su paciencia.", "2026-12-02"},
		{"", "Me encuentro de viaje y fuera de la oficina. Estaré de vuelta el 9/12.", "2026-12-09"},
	},
	"pt": {
		{"", "Olá,\n\nEstou fora do escritório até 3 de dezembro, com acesso limitado ao e-mail.\n\nAtenciosamente,\nJoão Silva", "2026-12-03"},
		{"Férias", "Estarei de férias de 23 de novembro a 4 de dezembro de 2026.", "2026-12-04"},
		{"", "Obrigado pelo seu e-mail. Estou ausente e retornarei no dia 07/12/2026.", "2026-12-07"},
		{"Fora do escritório", "Estou fora do escritório no momento, com acesso limitado ao e-mail. Responderei assim que possível.", ""},
		{"", "Estou em licença até 11 de janeiro de 2027. Em caso de urgência, fale com comercial@brasiltec.example.", "2027-01-11"},
		{"Ausente", "Estarei de volta em 1º de dezembro. Obrigado!", "2026-12-01"},
		{"", "Estou de férias até 30/11. Abraços, João", "2026-11-30"},
		{"Fora do escritório", "Estou fora do escritório até 2026-12-02.", "2026-12-02"},
		{"", "Olá! Estou em viagem a trabalho, fora do escritório até 5 de dez. de 2026.", "2026-12-05"},
	},
	"nl": {
		{"", "Beste afzender,\n\nIk ben afwezig tot en met 4 december. Uw e-mail wordt niet doorgestuurd.\n\nMet vriendelijke groet,\nSanne de Vries", "2026-12-05"},
		{"Afwezig", "Ik ben met vakantie t/m 3 december 2026.", "2026-12-04"},
		{"", "Bedankt voor je bericht. Ik ben niet op kantoor en ben vanaf 7 december weer aanwezig.", "2026-12-07"},
		{"Afwezigheid", "Ik ben afwezig van 24-11-2026 tot 01-12-2026.", "2026-12-01"},
		{"", "Ik ben momenteel afwezig. Uw e-mail wordt niet doorgestuurd.", ""},
		{"Vakantie", "Ik ben op vakantie tot maandag 30 november.", "2026-11-30"},
		{"", "Ik ben met verlof tot 8 januari 2027. Voor dringende zaken: info@polderdata.example.", "2027-01-08"},
		{"Niet op kantoor", "Ik ben niet op kantoor; op 2 dec. ben ik weer aanwezig.", "2026-12-02"},
		{"", "Afwezig tot 2026-12-09 i.v.m. een congres.", "2026-12-09"},
	},
	"sv": {
		{"", "Hej,\n\nJag är på semester till och med den 4 december och läser inte min e-post.\n\nVänliga hälsningar\nErik Lindqvist", "2026-12-05"},
		{"Frånvarande", "Jag är ledig t.o.m. 3 december 2026.", "2026-12-04"},
		{"", "Tack för ditt mejl. Jag är tillbaka på kontoret den 7 december.", "2026-12-07"},
		{"Frånvaro", "Jag är frånvarande till 2026-12-01.", "2026-12-01"},
		{"", "Jag är inte på kontoret just nu och har begränsad tillgång till e-post.", ""},
		{"Föräldraledig", "Jag är föräldraledig till 11 januari 2027. Kontakta gärna info@nordvik.example.", "2027-01-11"},
		{"", "Jag är på tjänsteresa, borta från kontoret, och åter måndag 30 november.", "2026-11-30"},
		{"Frånvarande", "Jag är borta från kontoret fram till 2 dec.", "2026-12-02"},
		{"", "Jag är på semester. Jag är tillbaka 9/12.", "2026-12-09"},
	},
}

var langs = []string{"en", "de", "fr", "es", "pt", "nl", "sv"}

func ooo(next func() int) {
	for li, lang := range langs {
		for k, s := range oooTexts[lang] {
			i := next()
			first, last, from, _ := contact(i)
			subject := s.subject
			var headers string
			style := (k + li) % 4
			switch style {
			case 0: // Exchange / Outlook automatic reply
				if subject == "" {
					subject = autoPrefix[lang] + ourSubject[lang]
				} else {
					subject = autoPrefix[lang] + subject
				}
				headers = "Auto-Submitted: auto-generated\nX-Auto-Response-Suppress: All\nX-MS-Exchange-Inbox-Rules-Loop: " + from + "\nThread-Topic: " + ourSubject[lang]
			case 1: // Gmail vacation responder
				if subject == "" {
					subject = "Re: " + ourSubject[lang]
				}
				headers = "Auto-Submitted: auto-replied\nX-Gm-Message-State: AOJu0YwZr1p0Fh1Qm"
			case 2: // Dovecot/Pigeonhole sieve vacation
				if subject == "" {
					subject = "Auto: " + ourSubject[lang]
				}
				headers = "Auto-Submitted: auto-replied (vacation)\nPrecedence: bulk"
			case 3: // Zimbra / hosted mail with X-Autoreply
				if subject == "" {
					subject = autoPrefix[lang] + ourSubject[lang]
				}
				headers = "X-Autoreply: yes\nPrecedence: auto_reply"
			}
			ct, enc := body(i, s.text)
			msg := fmt.Sprintf(`Return-Path: <%[1]s>
Received: from mx.%[2]s (mx.%[2]s [198.51.100.%[3]d])
	by mail.acme.example.com with ESMTPS id OOO%[3]d; %[4]s
From: %[5]s <%[1]s>
To: Ada Lovelace <ada@acme.example.com>
Subject: %[6]s
Date: %[4]s
Message-ID: <ooo-%[3]d.%[7]s@%[2]s>
In-Reply-To: %[8]s
References: %[8]s
%[9]s
MIME-Version: 1.0
%[10]s

%[11]s
`, from, strings.SplitN(from, "@", 2)[1], i, date(24+k%3, 10+k%7, 3*k), first+" "+last, encodeSubject(subject, i), lang, origID(i), headers, ct, enc)
			write("ooo-"+lang, "ooo", "", s.ret, origID(i), msg)
		}
	}
}

func encodeSubject(s string, i int) string {
	ascii := true
	for _, r := range s {
		if r > 127 {
			ascii = false
		}
	}
	if ascii {
		return s
	}
	if i%2 == 0 {
		return qEncode(s)
	}
	return bEncode(s)
}

var autoTexts = map[string][]string{
	"en": {
		"Thank you for contacting Northwind Support. Your request (#48213) has been received and is being reviewed by our support staff.\n\nTo add additional comments, reply to this email.",
		"This mailbox is no longer monitored. Please send your enquiry to hello@contoso.example.",
		"Thanks for your email! We have received it and will get back to you within 24 hours.",
	},
	"de": {
		"Vielen Dank für Ihre Nachricht. Wir haben Ihre Anfrage erhalten und melden uns schnellstmöglich bei Ihnen.",
		"Diese E-Mail-Adresse wird nicht mehr genutzt. Bitte schreiben Sie an info@bergbau-ag.example.",
		"Ihre Anfrage wurde unter der Ticketnummer 2026-1123 erfasst. Bitte geben Sie diese Nummer bei Rückfragen an.",
	},
	"fr": {
		"Nous avons bien reçu votre message et nous vous répondrons dans les plus brefs délais.",
		"Cette adresse n'est plus active, merci d'écrire à contact@vinexport.example.",
		"Votre demande n° 5521 a été enregistrée. Un conseiller vous répondra sous 48 heures.",
	},
	"es": {
		"Hemos recibido su mensaje y le responderemos lo antes posible.",
		"Esta dirección ya no está en uso. Por favor escriba a contacto@hispamar.example.",
		"Su solicitud #3312 ha sido registrada. Nuestro equipo le contactará pronto.",
	},
	"pt": {
		"Recebemos sua mensagem e responderemos em breve.",
		"Este endereço não é mais utilizado. Por favor, escreva para contato@brasiltec.example.",
		"Seu chamado nº 7781 foi aberto. Acompanhe pelo portal de atendimento.",
	},
	"nl": {
		"Bedankt voor uw bericht. Wij nemen zo snel mogelijk contact met u op.",
		"Dit e-mailadres is niet meer in gebruik. Stuur uw bericht naar info@polderdata.example.",
		"Uw aanvraag is geregistreerd onder nummer 4410.",
	},
	"sv": {
		"Tack för ditt meddelande. Vi återkommer så snart som möjligt.",
		"Denna adress används inte längre. Skicka ditt meddelande till info@nordvik.example.",
		"Ditt ärende har registrerats med nummer 9921.",
	},
}

func autoReplies(next func() int) {
	for li, lang := range langs {
		for k, text := range autoTexts[lang] {
			i := next()
			first, last, from, domain := contact(i)
			var subject, headers string
			switch (k + li) % 3 {
			case 0:
				subject = autoPrefix[lang] + ourSubject[lang]
				headers = "Auto-Submitted: auto-generated\nX-Auto-Response-Suppress: All"
			case 1:
				subject = "[Ticket #" + fmt.Sprint(4000+i) + "] Re: " + ourSubject[lang]
				headers = "Auto-Submitted: auto-replied\nX-Autorespond: " + from + "\nPrecedence: bulk"
			case 2:
				subject = "Re: " + ourSubject[lang]
				headers = "X-Autoreply: yes\nPrecedence: junk"
			}
			if k == 1 && li%2 == 0 {
				from = "noreply@" + domain
			}
			ct, enc := body(i+2, text)
			msg := fmt.Sprintf(`Return-Path: <%[1]s>
Received: from helpdesk.%[2]s ([192.0.2.%[3]d]) by mail.acme.example.com; %[4]s
From: %[5]s <%[1]s>
To: ada@acme.example.com
Subject: %[6]s
Date: %[4]s
Message-ID: <auto-%[3]d@helpdesk.%[2]s>
In-Reply-To: %[7]s
%[8]s
MIME-Version: 1.0
%[9]s

%[10]s
`, from, domain, i, date(25, 9+k, 10+li), first+" "+last, encodeSubject(subject, i), origID(i), headers, ct, enc)
			write("auto-"+lang, "auto_reply", "", "", origID(i), msg)
		}
	}
}
