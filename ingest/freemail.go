package ingest

import "strings"

// freeMail are consumer mailbox domains: a reply from one of them says
// nothing about the sender's company, so company stop never uses them.
var freeMail = map[string]bool{}

func init() {
	for _, d := range strings.Fields(`
		gmail.com googlemail.com outlook.com hotmail.com hotmail.co.uk hotmail.de hotmail.fr hotmail.es hotmail.it
		live.com live.co.uk live.de live.fr live.nl live.se msn.com yahoo.com yahoo.co.uk yahoo.de yahoo.fr yahoo.es
		yahoo.com.br yahoo.it ymail.com rocketmail.com aol.com aol.de icloud.com me.com mac.com proton.me protonmail.com
		pm.me gmx.com gmx.de gmx.net gmx.at gmx.ch gmx.fr web.de t-online.de freenet.de posteo.de mailbox.org
		orange.fr wanadoo.fr free.fr laposte.net sfr.fr bbox.fr terra.com.br uol.com.br bol.com.br ig.com.br
		sapo.pt hotmail.com.br outlook.com.br outlook.de outlook.fr outlook.es yandex.com yandex.ru mail.ru
		zoho.com tutanota.com tuta.io fastmail.com hey.com mail.com email.com ziggo.nl kpnmail.nl planet.nl
		home.nl telia.com spray.se bredband.net comhem.se libero.it virgilio.it qq.com 163.com 126.com naver.com
		seznam.cz wp.pl o2.pl interia.pl btinternet.com sky.com virginmedia.com comcast.net verizon.net att.net
		sbcglobal.net cox.net charter.net`) {
		freeMail[d] = true
	}
}

// FreeMail reports whether domain is a consumer mailbox provider.
func FreeMail(domain string) bool { return freeMail[strings.ToLower(strings.TrimSpace(domain))] }
