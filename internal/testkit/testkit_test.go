package testkit_test

import (
	"context"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dripdrop/dripdrop/internal/testkit"
)

func TestClockSetAddRunStop(t *testing.T) {
	t.Parallel()
	c := testkit.NewClock(testkit.Tuesday)
	if !c.Now().Equal(testkit.Tuesday) {
		t.Fatalf("new clock reads %v", c.Now())
	}
	c.Add(90 * time.Second)
	if want := testkit.Tuesday.Add(90 * time.Second); !c.Now().Equal(want) {
		t.Fatalf("after Add: %v, want %v", c.Now(), want)
	}
	later := testkit.Tuesday.Add(48 * time.Hour)
	c.Set(later)
	if !c.Now().Equal(later) {
		t.Fatalf("after Set: %v", c.Now())
	}
	c.Run()
	time.Sleep(5 * time.Millisecond)
	if got := c.Now(); !got.After(later) || got.Sub(later) > time.Minute {
		t.Fatalf("a running clock reads %v, want a little after %v", got, later)
	}
	c.Stop()
	stopped := c.Now()
	time.Sleep(2 * time.Millisecond)
	if !c.Now().Equal(stopped) {
		t.Fatal("a stopped clock moved")
	}
}

func TestClockIsSafeForConcurrentUse(t *testing.T) {
	t.Parallel()
	c := testkit.NewClock(testkit.Tuesday)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				c.Add(time.Second)
				_ = c.Now()
			}
		})
	}
	wg.Wait()
	if want := testkit.Tuesday.Add(800 * time.Second); !c.Now().Equal(want) {
		t.Fatalf("after 800 concurrent one-second steps: %v, want %v", c.Now(), want)
	}
}

func TestRecorderNamed(t *testing.T) {
	t.Parallel()
	rec, bus := testkit.NewRecorder(t)
	ctx := context.Background()
	count := map[string]float64{"count": 1}
	bus.Emit(ctx, "dripdrop.enrollment.paused", count, map[string]any{"enrollment_id": "e1", "tenant_key": "acme", "reason": "api"})
	bus.Emit(ctx, "dripdrop.enrollment.paused", count, map[string]any{"enrollment_id": "e2", "tenant_key": "acme", "reason": "api"})
	got := rec.Named("dripdrop.enrollment.paused")
	if len(got) != 2 || got[0]["enrollment_id"] != "e1" || got[1]["enrollment_id"] != "e2" {
		t.Fatalf("Named: %v", got)
	}
	if n := len(rec.Named("dripdrop.enrollment.resumed")); n != 0 {
		t.Fatalf("%d events of a name never emitted", n)
	}
	rec.Reset()
	if n := len(rec.Events()); n != 0 {
		t.Fatalf("%d events after Reset", n)
	}
}

func TestWorldSendsToItsSinkAndFeedListsEvents(t *testing.T) {
	t.Parallel()
	w := testkit.NewWorld(t)
	en := w.Enroll("bob@example.com", nil)
	if got := w.Enrollment(en.ID); got.State != "active" || len(got.Executions) == 0 {
		t.Fatalf("enrollment %s with %d executions", got.State, len(got.Executions))
	}
	if n := len(w.Events.Named("dripdrop.dispatch.adapter_pinned")); n != 1 {
		t.Fatalf("%d adapter_pinned events on the bus, want 1", n)
	}
	feed := w.Events.Feed(context.Background(), w.Store, w.Tenant, "dripdrop.dispatch.adapter_pinned")
	if len(feed) != 1 || feed[0].TenantKey != "acme" {
		t.Fatalf("feed: %+v", feed)
	}
	byName := w.Events.FeedUntil(context.Background(), w.Store, w.Tenant, "", "dripdrop.dispatch.adapter_pinned")
	if len(byName["dripdrop.dispatch.adapter_pinned"]) != 1 {
		t.Fatalf("FeedUntil: %v", byName)
	}
}

// Production code never imports the kit: it starts databases and servers.
func TestOnlyTestsImportTheKit(t *testing.T) {
	t.Parallel()
	root := filepath.Join("..", "..")
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testkit") && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, imp := range f.Imports {
			if p, _ := strconv.Unquote(imp.Path.Value); p == "github.com/dripdrop/dripdrop/internal/testkit" {
				t.Errorf("%s imports the test kit", path)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
