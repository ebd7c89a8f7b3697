package preflight

import (
	"bufio"
	"strings"
	"testing"
)

// The data files stay clean: lowercase, unique, valid entries.
func TestDataFiles(t *testing.T) {
	t.Parallel()
	for name, data := range map[string]string{"role_addresses.txt": roleData, "disposable_domains.txt": disposableData} {
		seen := map[string]bool{}
		sc := bufio.NewScanner(strings.NewReader(data))
		n := 0
		for sc.Scan() {
			line := sc.Text()
			if i := strings.IndexByte(line, '#'); i >= 0 {
				line = line[:i]
			}
			line = strings.TrimSpace(line)
			if line == "" {
				continue
			}
			n++
			if line != strings.ToLower(line) {
				t.Errorf("%s: %q is not lowercase", name, line)
			}
			if seen[line] {
				t.Errorf("%s: %q twice", name, line)
			}
			seen[line] = true
			if name == "disposable_domains.txt" {
				if a, code, _ := ParseAddress("x@" + line); code != "" || a.Domain != line {
					t.Errorf("%s: %q is not a valid domain", name, line)
				}
			} else if _, code, _ := ParseAddress(line + "@example.com"); code != "" {
				t.Errorf("%s: %q is not a valid local part", name, line)
			}
		}
		if n < 40 {
			t.Errorf("%s has %d entries", name, n)
		}
	}
	if len(roleSet) == 0 || len(disposableSet) == 0 {
		t.Fatal("lists not loaded")
	}
}
