package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/db"
	"github.com/dripdrop/dripdrop/db/localpg"
	"github.com/dripdrop/dripdrop/dispatch/smtpsink"
	"github.com/dripdrop/dripdrop/ingest"
	"github.com/dripdrop/dripdrop/internal/imaptest"
	"github.com/dripdrop/dripdrop/vault"
	"github.com/google/uuid"
)

// runDev starts a self-contained playground: a managed PostgreSQL in
// ./.dripdrop (unless DATABASE_URL is set), a local SMTP sink that every demo
// adapter delivers to, a seeded demo tenant, and the engine itself.
func runDev(ctx context.Context, args []string, log *slog.Logger) error {
	return devWith(ctx, args, log, os.Stderr, nil)
}

// dev is runDev with a hook called once the API serves (tests use it).
func dev(ctx context.Context, args []string, log *slog.Logger, onReady func(baseURL, apiKey string)) error {
	return devWith(ctx, args, log, nil, onReady)
}

// devWith is dev; with logOut set, -log-format and -log-level rebuild the
// logger on it.
func devWith(ctx context.Context, args []string, log *slog.Logger, logOut io.Writer, onReady func(baseURL, apiKey string)) (err error) {
	cfg := serveConfig{logOut: logOut}
	fs, dir, sinkAddr, stopDB := devFlags(&cfg)
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := cfg.check(); err != nil {
		return err
	}
	cfg.AllowPrivate = true // local receivers: dev allows private targets (docs/security.md)
	// The demo's adapters send from example domains: dev asks no DNS unless
	// told to (-dns-servers).
	dnsGiven := false
	fs.Visit(func(f *flag.Flag) { dnsGiven = dnsGiven || f.Name == "dns-servers" })
	if !dnsGiven {
		cfg.DNSServers = "off"
	}
	if log, err = cfg.logger(log); err != nil {
		return err
	}
	if *stopDB {
		stopped, err := localpg.StopAll(ctx, *dir)
		log.Info("managed PostgreSQL stopped", "dir", *dir, "clusters_stopped", len(stopped))
		return err
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		return err
	}
	if cfg.DatabaseURL == "" {
		c, perr := localpg.Ensure(ctx, filepath.Join(*dir, "pg"), localpg.Options{Log: func(f string, a ...any) { log.Info(fmt.Sprintf(f, a...)) }})
		if perr != nil {
			return perr
		}
		if c.Started { // a failed start leaves nothing running (err is dev's result)
			defer func() { stopIfFailed(err, c.Dir, log) }()
		}
		if err := db.CreateDatabase(ctx, c.URL("postgres"), "dripdrop"); err != nil {
			return err
		}
		cfg.DatabaseURL = c.URL("dripdrop")
		log.Info("managed PostgreSQL ready", "url", cfg.DatabaseURL, "stop_with", "make db/stop")
	}
	if cfg.EncryptionKey == "" {
		if cfg.EncryptionKey, err = keepSecret(filepath.Join(*dir, "encryption.key"), vault.GenerateKey); err != nil {
			return err
		}
	}
	box, err := vault.ParseKey(cfg.EncryptionKey)
	if err != nil {
		return err
	}
	if cfg.AdminToken == "" {
		if cfg.AdminToken, err = keepSecret(filepath.Join(*dir, "admin.token"), randomToken); err != nil {
			return err
		}
	}
	if _, err := db.Migrate(ctx, cfg.DatabaseURL); err != nil {
		return err
	}

	sink, err := smtpsink.Start(*sinkAddr, smtpsink.Options{OnMessage: func(m smtpsink.Message) {
		log.Info("sink received", "message_id", m.MessageID, "to", strings.Join(m.To, ","), "subject", m.Subject)
	}})
	if err != nil {
		log.Warn("sink address busy; using a free port", "addr", *sinkAddr, "err", err)
		if sink, err = smtpsink.Start("127.0.0.1:0", smtpsink.Options{}); err != nil {
			return err
		}
	}
	defer sink.Close()
	log.Info("SMTP sink listening", "addr", sink.Addr())
	// The sink is on loopback, maybe on a free port: dev lets adapters reach it.
	cfg.AllowPrivate = true
	if g, err := cfg.guard(); err != nil {
		return err
	} else if g.CheckSMTPPort(sink.Port()) != nil {
		var ports []string
		for _, p := range append(g.Ports(), sink.Port()) {
			ports = append(ports, strconv.Itoa(p))
		}
		cfg.SMTPPorts = strings.Join(ports, ",")
	}

	// Every demo adapter's mailbox lives in a local in-memory IMAP server
	// (go-imap v1's server, internal/imaptest): mailbox sync reads it like a
	// real Google or Microsoft mailbox.
	mail, err := imaptest.StartAt(devIMAPAddr)
	if err != nil {
		log.Warn("IMAP address busy; using a free port", "addr", devIMAPAddr, "err", err)
		if mail, err = imaptest.Start(); err != nil {
			return err
		}
	}
	defer mail.Close()
	for _, from := range demoAddresses {
		mail.AddUser(from, demoMailboxPassword)
		// The server forgets its mail when dev stops: a new UIDVALIDITY
		// each start tells mailbox sync the old UIDs mean nothing.
		for _, f := range []string{"INBOX", "Junk"} {
			_ = mail.SetUIDValidity(from, f, uint32(time.Now().Unix()))
		}
	}
	log.Info("demo mailboxes (in-memory IMAP) listening", "addr", mail.Addr)

	store, err := db.Open(ctx, cfg.DatabaseURL, db.Options{Vault: box})
	if err != nil {
		return err
	}
	key, err := seedDemo(ctx, store, sink, mail, filepath.Join(*dir, "demo.key"))
	store.Close()
	if err != nil {
		return fmt.Errorf("seeding the demo: %w", err)
	}
	if cfg.InboundSMTPAddr == "" {
		cfg.InboundSMTPAddr = "127.0.0.1:2526"
	}
	inboundAddr := ""
	cfg.inboundFallback = true
	cfg.inboundReady = func(addr string) { inboundAddr = addr }
	cfg.onSent = func(job *db.SendJob) {
		log.Info("sent", "step", job.StepKey, "attempt", job.Attempt, "message_id", job.MessageID, "in_reply_to", job.InReplyTo)
		if job.StepKey == "intro" && job.Contact.Email == demoReplier {
			// The demo's prospect answers a few seconds later: the reply
			// lands in the sending mailbox, where mailbox sync finds it.
			go func() {
				time.Sleep(3 * time.Second)
				if _, err := mail.Append(job.FromAddress, "INBOX", demoReply(job), time.Now()); err != nil {
					log.Warn("demo reply not delivered", "err", err)
					return
				}
				log.Info("demo: Margaret replied; the reply is in the sending mailbox's INBOX, mailbox sync will stop her sequence", "mailbox", job.FromAddress)
			}()
		}
	}
	cfg.onApplied = func(tenant string, adapter uuid.UUID, res ingest.InboundResult) {
		log.Info("mailbox sync applied a message", "intent", res.Intent, "correlation", res.Correlation, "stopped_enrollments", len(res.Effects.Stopped), "adapter_id", adapter)
	}
	return serve(ctx, cfg, box, log, func(addr string) {
		base := "http://" + addr
		if onReady != nil {
			onReady(base, key)
		}
		fmt.Fprintf(os.Stdout, `
  dripdrop dev is running
  ───────────────────────
  API            %[1]s
  dashboard      %[1]s/ui/  (sign in with the demo API key)
  SMTP sink      %[2]s
  inbound SMTP   %[5]s  (replies and bounces to a demo adapter's address)
  mailboxes      imap://%[6]s  (in-memory IMAP server, not Dovecot: each demo
                 adapter's mailbox, user = its address, password %[7]s; mailbox
                 sync reads them every 10 s — Margaret's demo reply lands there a
                 few seconds after her first e-mail and stops her sequence)
  demo API key   %[3]s
  admin token    %[4]s

  Try:
    curl -s -H 'Authorization: Bearer %[3]s' %[1]s/v1/adapters
    curl -s -H 'Authorization: Bearer %[3]s' %[1]s/v1/sequences
    curl -s %[1]s/openapi.yaml

`, base, sink.Addr(), key, cfg.AdminToken, inboundAddr, mail.Addr, demoMailboxPassword)
	})
}

// devFlags are the flags of dev: serve's, plus its own.
func devFlags(cfg *serveConfig) (fs *flag.FlagSet, dir, sinkAddr *string, stopDB *bool) {
	fs = newFlagSet("dev")
	cfg.flags(fs)
	// dev listens on loopback unless told otherwise.
	cfg.ListenAddr, fs.Lookup("listen").DefValue = "127.0.0.1:8080", "127.0.0.1:8080"
	dir = fs.String("dir", ".dripdrop", "directory for the managed database and dev secrets")
	sinkAddr = fs.String("sink", "127.0.0.1:2525", "listen address of the local SMTP sink")
	stopDB = fs.Bool("stop-db", false, "stop the managed PostgreSQL clusters in -dir (dev, test and bench) and exit")
	return fs, dir, sinkAddr, stopDB
}

// stopIfFailed stops the managed cluster in dir, which dev started, when dev
// fails.
func stopIfFailed(err error, dir string, log *slog.Logger) {
	if err == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	log.Info("dev failed: stopping the PostgreSQL it started", "dir", dir)
	if _, serr := localpg.Stop(ctx, dir); serr != nil {
		log.Error("stopping the managed PostgreSQL", "err", serr)
	}
}

// seedDemo creates (once) the demo tenant with two sink adapters, a pool and
// a three-step sequence, and returns the demo tenant's API key.
func seedDemo(ctx context.Context, store *db.Store, sink *smtpsink.Sink, mail *imaptest.Server, keyFile string) (string, error) {
	_, key, err := store.CreateTenant(ctx, "demo", "Demo tenant")
	switch {
	case err == nil:
		if err := os.WriteFile(keyFile, []byte(key.Secret+"\n"), 0o600); err != nil {
			return "", err
		}
	case dripdrop.ErrorCode(err) == dripdrop.ECodeAlreadyExists:
		if b, rerr := os.ReadFile(keyFile); rerr == nil {
			k := strings.TrimSpace(string(b))
			if _, aerr := store.Authenticate(ctx, k); aerr == nil {
				return k, repointSink(ctx, store, k, sink, mail)
			}
		}
		nk, err := store.CreateAPIKey(ctx, "demo", "dev")
		if err != nil {
			return "", err
		}
		if err := os.WriteFile(keyFile, []byte(nk.Secret+"\n"), 0o600); err != nil {
			return "", err
		}
		return nk.Secret, repointSink(ctx, store, nk.Secret, sink, mail)
	default:
		return "", err
	}
	var members []dripdrop.MemberInput
	for i, from := range demoAddresses {
		name, provider, tz := fmt.Sprintf("Demo mailbox %d", i+1), "sink", "UTC"
		gap := 5
		a, err := store.CreateAdapter(ctx, "demo", dripdrop.AdapterInput{
			Name: &name, Provider: &provider, FromAddress: &from, Credentials: demoCredentials(sink, from), Timezone: &tz, MinGapSeconds: &gap,
			DailyCap: dripdrop.Nullable[int]{Set: true, Valid: true, Value: 200}, IMAP: demoIMAP(mail),
		})
		if err != nil {
			return "", err
		}
		w := 1 + i
		members = append(members, dripdrop.MemberInput{AdapterID: &a.ID, Weight: &w})
	}
	poolName := "demo-pool"
	pool, err := store.CreatePool(ctx, "demo", dripdrop.PoolInput{Name: &poolName, Members: members})
	if err != nil {
		return "", err
	}
	seqKey, seqName := "demo-welcome", "Demo welcome sequence"
	step := func(key, subject, body string, delay int64) dripdrop.StepInput {
		return dripdrop.StepInput{Key: &key, Subject: &subject, BodyText: &body, DelaySeconds: &delay}
	}
	if _, err = store.CreateSequence(ctx, "demo", dripdrop.SequenceInput{
		Key: &seqKey, Name: &seqName,
		VersionInput: dripdrop.VersionInput{
			PoolID:     &pool.ID,
			SendWindow: &dripdrop.SendWindow{Days: []int{0, 1, 2, 3, 4, 5, 6}, Start: "00:00", End: "23:59", Timezone: "UTC"},
			Steps: []dripdrop.StepInput{
				step("intro", "{Quick|Short} question about {{company|your team}}", "{Hi|Hello} {{first_name|there}},\n\n{I noticed|I saw} {{company|your team}} is growing.\n\nBest,\nAlice", 0),
				step("bump", "", "{Just|Quickly} bumping this up, {{first_name|there}}.", 30),
				step("breakup", "", "Last note from me. {Cheers|Thanks}!", 60),
			},
		},
	}); err != nil {
		return "", err
	}
	// A few demo prospects, so mail flows into the sink right away.
	var contacts []dripdrop.ContactInput
	for _, c := range [][3]string{{"grace@example.com", "Grace", "Navy"}, {"linus@example.org", "Linus", "Kernel Co"}, {"margaret@example.net", "Margaret", "Apollo"}} {
		email, first, company := c[0], c[1], c[2]
		contacts = append(contacts, dripdrop.ContactInput{Email: &email, FirstName: &first, Company: &company})
	}
	if _, err := store.EnrollBatch(ctx, "demo", seqKey, contacts); err != nil {
		return "", err
	}
	return key.Secret, nil
}

// The demo's mailboxes.
const (
	devIMAPAddr         = "127.0.0.1:2143"
	demoMailboxPassword = "demo"
	demoReplier         = "margaret@example.net"
)

var demoAddresses = []string{"alice@demo.dripdrop.dev", "bob@demo.dripdrop.dev"}

// demoCredentials point a demo adapter at the sink, logging in with its
// mailbox's login (the sink accepts any).
func demoCredentials(sink *smtpsink.Sink, from string) *dripdrop.SMTPCredentials {
	return &dripdrop.SMTPCredentials{Host: "127.0.0.1", Port: sink.Port(), TLS: "none", Username: from, Password: demoMailboxPassword}
}

// demoIMAP points a demo adapter's mailbox sync at the in-memory server.
func demoIMAP(mail *imaptest.Server) dripdrop.Nullable[dripdrop.IMAPSettings] {
	host, p, _ := net.SplitHostPort(mail.Addr)
	port, _ := strconv.Atoi(p)
	return dripdrop.Nullable[dripdrop.IMAPSettings]{Set: true, Valid: true, Value: dripdrop.IMAPSettings{
		Host: host, Port: port, TLS: "none", IntervalSeconds: 10}}
}

// demoReply is Margaret's answer to the demo's first e-mail.
func demoReply(job *db.SendJob) []byte {
	return []byte(fmt.Sprintf("From: Margaret <%s>\r\nTo: %s\r\nSubject: Re: your question\r\nMessage-ID: <%s@example.com>\r\nIn-Reply-To: %s\r\nReferences: %s\r\nDate: %s\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHi Alice, sounds interesting. Can we talk on Thursday?\r\n\r\nMargaret\r\n",
		demoReplier, job.FromAddress, uuid.NewString(), job.MessageID, job.MessageID, time.Now().UTC().Format(time.RFC1123Z)))
}

// repointSink updates the demo adapters to the sink's and the mailbox
// server's current ports.
func repointSink(ctx context.Context, store *db.Store, key string, sink *smtpsink.Sink, mail *imaptest.Server) error {
	tenant, err := store.Authenticate(ctx, key)
	if err != nil {
		return err
	}
	adapters, _, err := store.ListAdapters(ctx, tenant, db.Page{Limit: 200})
	if err != nil {
		return err
	}
	for _, a := range adapters {
		if a.Provider != "sink" {
			continue
		}
		if _, err := store.UpdateAdapter(ctx, tenant, a.ID, dripdrop.AdapterInput{Credentials: demoCredentials(sink, a.FromAddress), IMAP: demoIMAP(mail)}); err != nil {
			return err
		}
	}
	return nil
}

// keepSecret reads a dev secret from path, generating it the first time.
func keepSecret(path string, gen func() string) (string, error) {
	if b, err := os.ReadFile(path); err == nil {
		return strings.TrimSpace(string(b)), nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	v := gen()
	return v, os.WriteFile(path, []byte(v+"\n"), 0o600)
}

func randomToken() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return "adm_" + base64.RawURLEncoding.EncodeToString(b)
}
