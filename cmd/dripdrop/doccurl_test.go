package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dripdrop/dripdrop/db/dbtest"
	"github.com/dripdrop/dripdrop/preflight/dnstest"
	"github.com/dripdrop/dripdrop/vault"
)

// docBlock is one ```sh block of a Markdown file that runs curl.
type docBlock struct {
	file string
	line int
	text string
}

var shBlock = regexp.MustCompile("(?ms)^```(?:sh|bash|shell)\n(.*?)^```")

// docCurlBlocks returns every shell block with a curl in README.md and docs/.
func docCurlBlocks(t *testing.T) []docBlock {
	t.Helper()
	files, _ := filepath.Glob("../../docs/*.md")
	files = append([]string{"../../README.md"}, files...)
	var out []docBlock
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range shBlock.FindAllSubmatchIndex(b, -1) {
			text := string(b[m[2]:m[3]])
			if strings.Contains(text, "curl ") {
				out = append(out, docBlock{file: filepath.Base(f), line: 1 + strings.Count(string(b[:m[0]]), "\n"), text: text})
			}
		}
	}
	return out
}

// TestDocCurlsSendTheirHeaders: every documented curl that sends a body says
// what it sends, so nobody gets a 415 by following the docs.
func TestDocCurlsSendTheirHeaders(t *testing.T) {
	t.Parallel()
	blocks := docCurlBlocks(t)
	if len(blocks) == 0 {
		t.Fatal("no curl examples found in README.md and docs/")
	}
	for _, b := range blocks {
		for _, cmd := range splitCommands(b.text) {
			if !strings.Contains(cmd, "curl ") {
				continue
			}
			sends := regexp.MustCompile(`\s(-d|--data\S*|-T|--upload-file|-F)\s`).MatchString(cmd + " ")
			if sends && !strings.Contains(cmd, "Content-Type:") {
				t.Errorf("%s:%d: curl sends a body without a Content-Type header:\n%s", b.file, b.line, cmd)
			}
			// ESP event webhooks authenticate by the provider's signature, not a key.
			if strings.Contains(cmd, "/v1/") && !strings.Contains(cmd, "Authorization: Bearer") && !strings.Contains(cmd, "/v1/inbound/events/") {
				t.Errorf("%s:%d: curl to /v1 without an Authorization header:\n%s", b.file, b.line, cmd)
			}
		}
	}
}

// splitCommands joins continuation lines and splits a block into commands.
func splitCommands(block string) []string {
	return strings.Split(strings.ReplaceAll(block, "\\\n", " "), "\n")
}

// TestDocCurlsWork runs every documented curl, as written, against
// `dripdrop dev` (its demo tenant, admin token and .dripdrop/demo.key), with
// curl --fail-with-body: each must answer 2xx. Blocks run in document
// order; ENROLLMENT_ID, SEQUENCE_ID, ADAPTER_ID and POOL_ID name demo rows.
// The demo's From domain is served by a DNS server on loopback
// (-dns-servers), so the preflight examples run too.
func TestDocCurlsWork(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not installed: the documented curl examples cannot be run (install curl)")
	}
	work := t.TempDir()
	const admin = "doc-admin-token"
	r := startDev(t, work, admin)
	ids := demoIDs(t, r.base, r.key)
	for _, b := range docCurlBlocks(t) {
		script := strings.ReplaceAll(b.text, "http://127.0.0.1:8080", r.base)
		cmd := exec.Command("sh", "-ec", "curl() { command curl --fail-with-body \"$@\"; }\n"+script)
		cmd.Dir = work
		cmd.Env = append(os.Environ(), "DRIPDROP_ADMIN_TOKEN="+admin, "DRIPDROP_API_KEY="+r.key,
			"ENROLLMENT_ID="+ids["enrollment"], "SEQUENCE_ID="+ids["sequence"], "ADAPTER_ID="+ids["adapter"], "POOL_ID="+ids["pool"])
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("%s:%d: %v\n%s\n--- output:\n%s", b.file, b.line, err, b.text, out)
		}
	}
}

type devServer struct{ base, key string }

// startDev runs `dripdrop dev` with its directory in work/.dripdrop until
// the test ends.
func startDev(t *testing.T, work, admin string) devServer {
	t.Helper()
	url := dbtest.URL(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	zone := dnstest.Start(t,
		`demo.dripdrop.dev. 300 IN TXT "v=spf1 ip4:192.0.2.25 -all"`,
		`_dmarc.demo.dripdrop.dev. 300 IN TXT "v=DMARC1; p=none; rua=mailto:dmarc@demo.dripdrop.dev"`,
		`demo.dripdrop.dev. 300 IN MX 10 mx.demo.dripdrop.dev.`,
	)
	ctx, cancel := context.WithCancel(context.Background())
	readyc := make(chan devServer, 1)
	errc := make(chan error, 1)
	go func() {
		errc <- dev(ctx, []string{"-dir", filepath.Join(work, ".dripdrop"), "-database-url", url, "-listen", "127.0.0.1:0", "-sink", "127.0.0.1:0",
			"-encryption-key", vault.GenerateKey(), "-admin-token", admin, "-dns-servers", zone.Addr}, log, func(b, k string) { readyc <- devServer{b, k} })
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("dev shutdown: %v", err)
		}
	})
	select {
	case r := <-readyc:
		return r
	case err := <-errc:
		errc <- nil
		t.Fatalf("dev exited: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("dev did not serve within 60 s")
	}
	return devServer{}
}

// demoIDs returns the ids of the demo sequence, an adapter and an
// enrollment (of grace@example.com).
func demoIDs(t *testing.T, base, key string) map[string]string {
	t.Helper()
	first := func(path string) string {
		req, _ := http.NewRequest("GET", base+path, nil)
		req.Header.Set("Authorization", "Bearer "+key)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var body struct {
			Data []struct {
				ID string `json:"id"`
			} `json:"data"`
		}
		if err := json.NewDecoder(res.Body).Decode(&body); err != nil || len(body.Data) == 0 {
			t.Fatalf("GET %s: %d, %v", path, res.StatusCode, err)
		}
		return body.Data[0].ID
	}
	return map[string]string{
		"sequence":   first("/v1/sequences"),
		"adapter":    first("/v1/adapters"),
		"pool":       first("/v1/pools"),
		"enrollment": first("/v1/enrollments?email=grace@example.com"),
	}
}
