// Package spintax parses and renders dripdrop templates: spintax groups
// {a|b|c} (nested to depth 32) and atomic variable tokens {{name}} and
// {{name|fallback}}. It is pure: no I/O, no clock, no global randomness.
//
// Escapes: \{ \} \| and \\ produce the literal character; any other
// backslash is literal. Outside a group a '|' is literal.
//
// Spintax is resolved before variables are substituted, so contact data is
// never interpreted as spintax.
//
// # Determinism
//
// Choices come from a SplitMix64 stream seeded with Seed(id, window): the
// first 8 bytes (big-endian) of SHA-256("dripdrop/spintax/v1" || id ||
// uint32 big-endian attempt window). Each group consumes exactly one draw x,
// and picks alternative uint64((x × n) >> 64) among its n non-empty
// alternatives. A send renders subject, body_text and body_html, in that
// order, with one Renderer, so the same execution and attempt window always
// renders byte-identical text.
package spintax

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"sort"
	"strings"
	"sync"
)

// Limits.
const (
	MaxDepth = 32
	MaxSize  = 64 << 10
)

// SyntaxError is a malformed template.
type SyntaxError struct {
	Offset int    // byte offset of the problem
	Reason string // unbalanced_braces, max_depth, too_large, unterminated_variable, invalid_variable
}

func (e *SyntaxError) Error() string {
	msgs := map[string]string{
		"unbalanced_braces":     "unbalanced braces",
		"max_depth":             fmt.Sprintf("spintax nested deeper than %d", MaxDepth),
		"too_large":             fmt.Sprintf("template larger than %d bytes", MaxSize),
		"unterminated_variable": "{{ without a closing }}",
		"invalid_variable":      "invalid variable name",
	}
	return fmt.Sprintf("%s at byte %d", msgs[e.Reason], e.Offset)
}

// MissingVariableError is a variable without fallback that the contact
// does not have.
type MissingVariableError struct{ Name string }

func (e *MissingVariableError) Error() string { return "missing variable " + e.Name }

// Warning is a recoverable issue found while parsing.
type Warning struct {
	Reason string `json:"reason"` // empty_alternative
	Token  string `json:"token"`  // the group's source, truncated to 64 bytes
	Offset int    `json:"offset"`
}

type kind uint8

const (
	kText kind = iota
	kVar
	kGroup
)

type node struct {
	kind     kind
	text     string // kText: literal; kVar: name
	fallback string
	hasFall  bool
	alts     [][]node // kGroup: non-empty alternatives
}

// Template is a parsed template; it is immutable and safe for concurrent use.
type Template struct {
	src      string
	nodes    []node
	vars     []string
	groups   int
	warnings []Warning
	variants float64
}

// Source returns the template text.
func (t *Template) Source() string { return t.src }

// Variables returns the variable names used, sorted, unique.
func (t *Template) Variables() []string { return append([]string(nil), t.vars...) }

// HasSpintax reports whether the template has at least one group.
func (t *Template) HasSpintax() bool { return t.groups > 0 }

// Warnings returns the recoverable issues found while parsing.
func (t *Template) Warnings() []Warning { return append([]Warning(nil), t.warnings...) }

// Parse parses a template with spintax.
func Parse(src string) (*Template, error) { return parse(src, true) }

// ParseVariablesOnly parses a template whose braces are literal text: only
// {{variable}} tokens are recognised (steps with spintax disabled).
func ParseVariablesOnly(src string) (*Template, error) { return parse(src, false) }

// Validate reports the first syntax error of a spintax template.
func Validate(src string) error {
	_, err := Parse(src)
	return err
}

// scanner answers "where is the next }}" and "is there a brace before it"
// in O(1) per query, so hostile input such as 64 KiB of "{{" parses in
// linear time.
type scanner struct {
	nextClose []int32 // index of the next "}}" at or after i, or -1
	nextBrace []int32 // index of the next '{' or '}' at or after i, or -1
}

func newScanner(src string) *scanner {
	n := len(src)
	sc := &scanner{nextClose: make([]int32, n+1), nextBrace: make([]int32, n+1)}
	sc.nextClose[n], sc.nextBrace[n] = -1, -1
	for i := n - 1; i >= 0; i-- {
		sc.nextClose[i], sc.nextBrace[i] = sc.nextClose[i+1], sc.nextBrace[i+1]
		if src[i] == '{' || src[i] == '}' {
			sc.nextBrace[i] = int32(i)
		}
		if src[i] == '}' && i+1 < n && src[i+1] == '}' {
			sc.nextClose[i] = int32(i)
		}
	}
	return sc
}

// varEnd returns the index of the "}}" closing a variable token that starts
// with "{{" at i, or -1. With spintax on, "{{a|b} c|d}" is a group nested at
// the start of a group: a token needs a "}}" with no brace before it.
func (sc *scanner) varEnd(i int, spin bool) int {
	end := int(sc.nextClose[i+2])
	if end < 0 {
		return -1
	}
	if spin {
		if b := int(sc.nextBrace[i+2]); b >= 0 && b < end {
			return -1
		}
	}
	return end
}

type frame struct {
	start int      // offset of '{'
	alts  [][]node // finished alternatives
	cur   []node   // alternative being built
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z'):
		case i > 0 && ((r >= '0' && r <= '9') || r == '.'):
		default:
			return false
		}
	}
	return true
}

func parse(src string, spin bool) (*Template, error) {
	if len(src) > MaxSize {
		return nil, &SyntaxError{Offset: MaxSize, Reason: "too_large"}
	}
	t := &Template{src: src}
	sc := newScanner(src)
	vars := map[string]bool{}
	var stack []frame
	top := []node{} // the root sequence
	var lit strings.Builder
	cur := func() *[]node {
		if len(stack) == 0 {
			return &top
		}
		return &stack[len(stack)-1].cur
	}
	flush := func() {
		if lit.Len() > 0 {
			*cur() = append(*cur(), node{kind: kText, text: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(src); i++ {
		c := src[i]
		switch {
		case spin && c == '\\' && i+1 < len(src) && (src[i+1] == '{' || src[i+1] == '}' || src[i+1] == '|' || src[i+1] == '\\'):
			lit.WriteByte(src[i+1])
			i++
		case c == '{' && i+1 < len(src) && src[i+1] == '{' && (!spin || sc.varEnd(i, spin) >= 0):
			end := sc.varEnd(i, spin)
			if end < 0 {
				return nil, &SyntaxError{Offset: i, Reason: "unterminated_variable"}
			}
			inner := src[i+2 : end]
			name, fb, hasFall := strings.Cut(inner, "|")
			name = strings.TrimSpace(name)
			if !validName(name) {
				return nil, &SyntaxError{Offset: i, Reason: "invalid_variable"}
			}
			flush()
			*cur() = append(*cur(), node{kind: kVar, text: name, fallback: fb, hasFall: hasFall})
			vars[name] = true
			i = end + 1
		case spin && c == '{':
			if len(stack) == MaxDepth {
				return nil, &SyntaxError{Offset: i, Reason: "max_depth"}
			}
			flush()
			stack = append(stack, frame{start: i})
		case spin && c == '|' && len(stack) > 0:
			flush()
			f := &stack[len(stack)-1]
			f.alts = append(f.alts, f.cur)
			f.cur = nil
		case spin && c == '}':
			if len(stack) == 0 {
				return nil, &SyntaxError{Offset: i, Reason: "unbalanced_braces"}
			}
			flush()
			f := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			all := append(f.alts, f.cur)
			g := node{kind: kGroup}
			for _, a := range all {
				if len(a) > 0 {
					g.alts = append(g.alts, a)
				}
			}
			if len(g.alts) < len(all) {
				tok := src[f.start : i+1]
				if len(tok) > 64 {
					tok = tok[:64]
				}
				t.warnings = append(t.warnings, Warning{Reason: "empty_alternative", Token: tok, Offset: f.start})
			}
			t.groups++
			*cur() = append(*cur(), g)
		default:
			lit.WriteByte(c)
		}
	}
	if len(stack) > 0 {
		return nil, &SyntaxError{Offset: stack[len(stack)-1].start, Reason: "unbalanced_braces"}
	}
	flush()
	t.nodes = top
	for v := range vars {
		t.vars = append(t.vars, v)
	}
	sort.Strings(t.vars)
	t.variants = variants(top)
	return t, nil
}

// variants counts distinct choice combinations (saturating).
func variants(seq []node) float64 {
	n := 1.0
	for _, nd := range seq {
		if nd.kind != kGroup {
			continue
		}
		sum := 0.0
		for _, a := range nd.alts {
			sum += variants(a)
		}
		if sum > 0 {
			n *= sum
		}
		if n > math.MaxInt64 {
			return math.MaxInt64
		}
	}
	return n
}

// Seed derives the choice seed of one execution and attempt window.
func Seed(id [16]byte, attemptWindow int) uint64 {
	var buf [len("dripdrop/spintax/v1") + 16 + 4]byte
	n := copy(buf[:], "dripdrop/spintax/v1")
	n += copy(buf[n:], id[:])
	binary.BigEndian.PutUint32(buf[n:], uint32(attemptWindow))
	sum := sha256.Sum256(buf[:])
	return binary.BigEndian.Uint64(sum[:8])
}

// Renderer renders templates from one deterministic choice stream.
type Renderer struct{ state uint64 }

// NewRenderer starts a stream at seed.
func NewRenderer(seed uint64) *Renderer { return &Renderer{state: seed} }

// next is SplitMix64.
func (r *Renderer) next() uint64 {
	r.state += 0x9E3779B97F4A7C15
	z := r.state
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

func (r *Renderer) choose(n int) int {
	hi, _ := bits.Mul64(r.next(), uint64(n))
	return int(hi)
}

// Vars resolves variables.
type Vars interface {
	Lookup(name string) (string, bool)
}

// MapVars is a Vars backed by a map.
type MapVars map[string]string

// Lookup implements Vars.
func (m MapVars) Lookup(name string) (string, bool) {
	v, ok := m[name]
	return v, ok
}

// Render resolves the template's groups and substitutes its variables.
// A variable without fallback that is absent is a *MissingVariableError;
// the fallback is used when the variable is absent or blank.
func (r *Renderer) Render(t *Template, vars Vars) (string, error) {
	var b strings.Builder
	b.Grow(len(t.src))
	if err := r.render(&b, t.nodes, vars); err != nil {
		return "", err
	}
	return b.String(), nil
}

func (r *Renderer) render(b *strings.Builder, seq []node, vars Vars) error {
	for i := range seq {
		nd := &seq[i]
		switch nd.kind {
		case kText:
			b.WriteString(nd.text)
		case kVar:
			v, ok := "", false
			if vars != nil {
				v, ok = vars.Lookup(nd.text)
			}
			switch {
			case nd.hasFall && strings.TrimSpace(v) == "":
				b.WriteString(nd.fallback)
			case !ok:
				return &MissingVariableError{Name: nd.text}
			default:
				b.WriteString(v)
			}
		case kGroup:
			x := r.choose(max(len(nd.alts), 1))
			if len(nd.alts) == 0 {
				continue
			}
			if err := r.render(b, nd.alts[x], vars); err != nil {
				return err
			}
		}
	}
	return nil
}

// PreviewResult is what Preview found.
type PreviewResult struct {
	Renderings []string  `json:"renderings"`
	Distinct   int       `json:"distinct"`
	Variants   int64     `json:"variants"`
	Warnings   []Warning `json:"warnings"`
}

// Preview renders a template n times with the seeds of attempt windows
// 0..n-1 of a zero execution id, counting distinct outputs.
func Preview(src string, n int, vars Vars) (PreviewResult, error) {
	t, err := Parse(src)
	if err != nil {
		return PreviewResult{}, err
	}
	res := PreviewResult{Variants: int64(t.variants), Warnings: t.Warnings()}
	seen := map[string]bool{}
	for i := 0; i < n; i++ {
		out, err := NewRenderer(Seed([16]byte{}, i)).Render(t, vars)
		if err != nil {
			return res, err
		}
		res.Renderings = append(res.Renderings, out)
		seen[out] = true
	}
	res.Distinct = len(seen)
	return res, nil
}

// Cache parses each distinct template once. It is bounded and safe for
// concurrent use; parse errors are cached too.
type Cache struct {
	mu  sync.Mutex
	max int
	m   map[cacheKey]cacheEntry
}

type cacheKey struct {
	src  string
	spin bool
}

type cacheEntry struct {
	t   *Template
	err error
}

// NewCache returns a cache of at most max templates.
func NewCache(max int) *Cache { return &Cache{max: max, m: map[cacheKey]cacheEntry{}} }

// Parse returns the parsed template (spin=false: variables only).
func (c *Cache) Parse(src string, spin bool) (*Template, error) {
	k := cacheKey{src, spin}
	c.mu.Lock()
	e, ok := c.m[k]
	c.mu.Unlock()
	if ok {
		return e.t, e.err
	}
	e.t, e.err = parse(src, spin)
	c.mu.Lock()
	if len(c.m) >= c.max {
		clear(c.m) // simple and bounded; templates are few and re-parse cheaply
	}
	c.m[k] = e
	c.mu.Unlock()
	return e.t, e.err
}
