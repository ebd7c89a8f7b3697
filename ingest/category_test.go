package ingest_test

import (
	"testing"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/ingest"
)

func TestCategorize(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		lang, text string
		want       ingest.Category
		phrase     string
	}{
		// English.
		{"en", "Sounds interesting, let's talk on Thursday.", ingest.Interested, "sounds interesting"},
		{"en", "Yes — I'm interested. What time works for you?", ingest.Interested, "i'm interested"},
		{"en", "Thanks, but we're not interested.", ingest.NotInterested, "not interested"},
		{"en", "Not really interested, sorry.", ingest.Uncategorized, ""},
		{"en", "No thanks, we already use another tool.", ingest.NotInterested, "no thanks"},
		{"en", "No.", ingest.NotInterested, "no"},
		{"en", "Not right now — maybe reach out again next quarter.", ingest.NotNow, "not right now"},
		{"en", "We're not interested right now, try me again in the spring.", ingest.NotNow, "not interested right now"},
		{"en", "I'm not the right person. Please contact my colleague Dana Ortiz.", ingest.Referral, "please contact"},
		{"en", "Please contact me next month.", ingest.NotNow, "next month"},
		{"en", "I'm not the right person for this, sorry.", ingest.WrongPerson, "not the right person"},
		{"en", "I no longer work at Acme.", ingest.WrongPerson, "no longer work"},
		{"en", "How much does it cost per seat?", ingest.Question, "how much"},
		{"en", "Do you integrate with our CRM?", ingest.Question, "do you integrate with our crm?"},
		{"en", "Thanks for the note.", ingest.Uncategorized, ""},
		{"en", "I\u2019m interested.", ingest.Interested, "i'm interested"},
		// German.
		{"de", "Klingt gut, lassen Sie uns nächste Woche telefonieren.", ingest.Interested, "klingt gut"},
		{"de", "Vielen Dank, aber kein Interesse.", ingest.NotInterested, "kein interesse"},
		{"de", "Aktuell nicht, melden Sie sich gerne nächstes Jahr wieder.", ingest.NotNow, "aktuell nicht"},
		{"de", "Dafür bin ich nicht zuständig.", ingest.WrongPerson, "nicht zuständig"},
		{"de", "Wenden Sie sich bitte an meine Kollegin Frau Berger.", ingest.Referral, "meine kollegin"},
		{"de", "Was kostet das im Jahr?", ingest.Question, "was kostet"},
		// French.
		{"fr", "Ça m'intéresse, je suis disponible jeudi.", ingest.Interested, "ça m'intéresse"},
		{"fr", "Non merci, nous avons déjà une solution.", ingest.NotInterested, "non merci"},
		{"fr", "Pas pour le moment, recontactez-moi dans six mois.", ingest.NotNow, "pas pour le moment"},
		{"fr", "Je ne suis pas la bonne personne, voyez avec mon collègue Paul.", ingest.Referral, "voyez avec"},
		{"fr", "Je ne suis pas concernée par ce sujet.", ingest.WrongPerson, "ne suis pas concernée"},
		{"fr", "Quel est le prix ?", ingest.Question, "quel est le prix"},
		// Spanish.
		{"es", "Me interesa, ¿hablamos el martes?", ingest.Interested, "me interesa"},
		{"es", "No me interesa, gracias.", ingest.NotInterested, "no me interesa"},
		{"es", "Ahora no, quizás más adelante.", ingest.NotNow, "ahora no"},
		{"es", "Ya no trabajo en esa empresa.", ingest.WrongPerson, "ya no trabajo"},
		{"es", "Hable con mi compañera Lucía, ella lleva esto.", ingest.Referral, "hable con"},
		{"es", "Contacte conmigo el mes que viene.", ingest.NotNow, "el mes que viene"},
		{"es", "¿Cuánto cuesta?", ingest.Question, "cuánto cuesta"},
		// Portuguese.
		{"pt", "Tenho interesse, vamos conversar.", ingest.Interested, "tenho interesse"},
		{"pt", "Não, obrigado. Já temos um fornecedor.", ingest.NotInterested, "não, obrigado"},
		{"pt", "Agora não, talvez no próximo ano.", ingest.NotNow, "agora não"},
		{"pt", "Não sou a pessoa certa para isso.", ingest.WrongPerson, "não sou a pessoa"},
		{"pt", "Fale com o meu colega Rui.", ingest.Referral, "fale com"},
		{"pt", "Fale comigo amanhã.", ingest.Uncategorized, ""},
		{"pt", "Quanto custa por usuário?", ingest.Question, "quanto custa"},
		// Dutch.
		{"nl", "Klinkt goed, laten we bellen.", ingest.Interested, "klinkt goed"},
		{"nl", "Nee bedankt, geen interesse.", ingest.NotInterested, "nee bedankt"},
		{"nl", "Op dit moment niet, misschien na de zomer.", ingest.NotNow, "op dit moment niet"},
		{"nl", "Ik werk hier niet meer.", ingest.WrongPerson, "werk hier niet meer"},
		{"nl", "Neem contact op met mijn collega Sanne.", ingest.Referral, "neem contact op met"},
		{"nl", "Wat kost het?", ingest.Question, "wat kost"},
		// Swedish.
		{"sv", "Låter intressant, när passar det för dig?", ingest.Interested, "låter intressant"},
		{"sv", "Nej tack, vi är nöjda med vår leverantör.", ingest.NotInterested, "nej tack"},
		{"sv", "Inte just nu, hör av dig igen efter sommaren.", ingest.NotNow, "inte just nu"},
		{"sv", "Jag är fel person för det här.", ingest.WrongPerson, "fel person"},
		{"sv", "Prata med min kollega Erik istället.", ingest.Referral, "prata med"},
		{"sv", "Vad kostar det?", ingest.Question, "vad kostar"},
		{"sv", "Inte intresserad.", ingest.NotInterested, "inte intresserad"},
	} {
		got, ev := ingest.Categorize(tc.text)
		if got != tc.want {
			t.Errorf("[%s] %q: %s (%+v), want %s", tc.lang, tc.text, got, ev, tc.want)
			continue
		}
		if ev.Rule != string(got) {
			t.Errorf("[%s] %q: evidence rule %q", tc.lang, tc.text, ev.Rule)
		}
		if tc.phrase != "" && ev.Phrase != tc.phrase {
			t.Errorf("[%s] %q: evidence %q, want %q", tc.lang, tc.text, ev.Phrase, tc.phrase)
		}
		if tc.phrase != "" && got != ingest.Question && ev.Language != tc.lang && !(tc.lang == "en" && ev.Language == "en") {
			t.Errorf("[%s] %q: evidence language %q", tc.lang, tc.text, ev.Language)
		}
	}
}

func TestCategorizeReadsOnlyTheNewText(t *testing.T) {
	t.Parallel()
	reply := "Not interested, thanks.\n\nOn Mon, Dec 7, 2026 at 9:00 AM Ann <ann@example.com> wrote:\n> Are you interested in a quick call?\n"
	m := &ingest.Message{BodyText: reply}
	if got, ev := ingest.Categorize(m.NewText()); got != ingest.NotInterested || ev.Phrase != "not interested" {
		t.Fatalf("%s %+v", got, ev)
	}
	quotedOnly := "Thanks.\n\n> Would you be interested in a call?"
	if got, _ := ingest.Categorize((&ingest.Message{BodyText: quotedOnly}).NewText()); got != ingest.Uncategorized {
		t.Fatalf("a quoted phrase decided: %s", got)
	}
	for _, c := range ingest.Categories {
		if !c.Valid() {
			t.Fatalf("%s invalid", c)
		}
	}
	if ingest.Category("hot_lead").Valid() {
		t.Fatal("an unknown category is valid")
	}
}

func FuzzCategorize(f *testing.F) {
	for _, s := range []string{"Sounds good", "nicht jetzt", "¿Cuánto cuesta?", "no", "", "\xff\xfe?", "talk to   me", "prata med"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, ev := ingest.Categorize(s)
		if !c.Valid() || ev.Rule != string(c) {
			t.Fatalf("%q: %s %+v", s, c, ev)
		}
		if len(ev.Phrase) > 4<<10 {
			t.Fatalf("evidence of %d bytes", len(ev.Phrase))
		}
	})
}

func TestCategoriesMatchTheDomainList(t *testing.T) {
	t.Parallel()
	if len(dripdrop.ReplyCategories) != len(ingest.Categories) {
		t.Fatalf("%v vs %v", dripdrop.ReplyCategories, ingest.Categories)
	}
	for i, c := range ingest.Categories {
		if dripdrop.ReplyCategories[i] != string(c) {
			t.Fatalf("%v vs %v", dripdrop.ReplyCategories, ingest.Categories)
		}
	}
}
