package api

import (
	"net/http"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/dripdrop/dripdrop/internal/testkit"
)

func TestAuthLimiterWindow(t *testing.T) {
	t.Parallel()
	clk := testkit.NewClock(time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC))
	l := newAuthLimiter(clk)
	a := netip.MustParseAddr("203.0.113.9")
	for i := 0; i < 20; i++ {
		if over, _ := l.fail(a); over {
			t.Fatalf("failure %d limited", i+1)
		}
		clk.Add(2 * time.Second)
	}
	// 21st failure at +40 s: limited until the window (started at +0) ends.
	over, wait := l.fail(a)
	if !over || wait != 20*time.Second {
		t.Fatalf("21st failure: %v %v, want limited for 20s", over, wait)
	}
	clk.Add(wait - time.Nanosecond)
	if over, _ := l.fail(a); !over {
		t.Fatal("limit lifted before the window ended")
	}
	clk.Add(time.Nanosecond)
	if over, _ := l.fail(a); over {
		t.Fatal("still limited after the window")
	}
	// An IPv4-mapped address is the same client as its IPv4 form.
	for i := 0; i < 19; i++ {
		l.fail(a)
	}
	if over, _ := l.fail(netip.MustParseAddr("::ffff:203.0.113.9")); !over {
		t.Fatal("mapped form counted separately")
	}
}

// A flood of distinct addresses costs bounded memory, and the limiter keeps
// working for a repeat offender during and after the flood.
func TestAuthLimiterBoundedUnderFlood(t *testing.T) {
	// Not parallel: it measures the heap before and after, which other tests allocating at once would inflate.
	clk := testkit.NewClock(time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC))
	l := newAuthLimiter(clk)
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := 0; i < 100_000; i++ {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		l.fail(a)
		if i%1000 == 0 {
			clk.Add(100 * time.Millisecond)
		}
	}
	for i := 0; i < 100_000; i++ {
		l.fail(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, byte(i >> 16), byte(i >> 8), byte(i), 0, 15: 1}))
	}
	if n := l.size(); n > authLimitEntries {
		t.Fatalf("%d entries tracked, bound is %d", n, authLimitEntries)
	}
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	if grown := int64(after.HeapAlloc) - int64(before.HeapAlloc); grown > 8<<20 {
		t.Fatalf("heap grew by %d bytes under the flood", grown)
	}
	// After the flood the limiter still catches a repeat offender.
	clk.Add(2 * time.Minute)
	offender := netip.MustParseAddr("198.51.100.1")
	limited := false
	for i := 0; i < 21; i++ {
		limited, _ = l.fail(offender)
	}
	if !limited {
		t.Fatal("the offender was not limited after the flood")
	}
}

func TestClientAddr(t *testing.T) {
	t.Parallel()
	trusted, err := ParseTrustedProxies("10.0.0.0/8, 127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		remote, xff string
		trusted     []netip.Prefix
		want        string
	}{
		{"203.0.113.1:5555", "", nil, "203.0.113.1"},
		{"203.0.113.1:5555", "1.2.3.4", nil, "203.0.113.1"},
		{"203.0.113.1:5555", "1.2.3.4", trusted, "203.0.113.1"}, // peer not trusted
		{"127.0.0.1:5555", "1.2.3.4", trusted, "1.2.3.4"},
		{"127.0.0.1:5555", "9.9.9.9, 1.2.3.4, 10.1.1.1", trusted, "1.2.3.4"}, // right-most untrusted hop
		{"127.0.0.1:5555", "garbage, 1.2.3.4", trusted, "1.2.3.4"},
		{"127.0.0.1:5555", "1.2.3.4, garbage", trusted, "127.0.0.1"},
		{"127.0.0.1:5555", "", trusted, "127.0.0.1"},
		{"[::ffff:127.0.0.1]:5555", "5.6.7.8", trusted, "5.6.7.8"},
	} {
		r := &http.Request{RemoteAddr: c.remote, Header: http.Header{}}
		if c.xff != "" {
			r.Header.Set("X-Forwarded-For", c.xff)
		}
		if got := clientAddr(r, c.trusted); got.String() != c.want {
			t.Errorf("clientAddr(%s, %q) = %s, want %s", c.remote, c.xff, got, c.want)
		}
	}
	if _, err := ParseTrustedProxies("10.0.0.0/8,nope"); err == nil {
		t.Error("bad proxy list accepted")
	}
}
