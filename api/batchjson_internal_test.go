package api

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// batchJSONSeeds are bodies of the shape decodeBatchJSON takes, and near
// misses it must decline (or decode as encoding/json does).
var batchJSONSeeds = []string{
	`{"sequence_key":"welcome","contacts":[{"email":"a@example.com","first_name":"Ada","company":"Acme","vars":{"plan":"pro"}}]}`,
	" {\n \"contacts\" : [ { \"email\" : \"b@example.com\" , \"vars\" : { \"n\" : -1.5e3 , \"t\" : true , \"f\" : false , \"z\" : null , \"s\" : \"x\" } } ] , \"sequence_key\" : null }\r\n",
	`{"sequence_key":"s","contacts":[]}`,
	`{"sequence_key":"s","contacts":null}`,
	`{}`,
	`{"sequence_key":"s","contacts":[{}, {"email":null,"last_name":"Zoë 東京","timezone":"Europe/Paris","vars":{}}]}`,
	`{"sequence_key":"s","contacts":[{"vars":null}]}`,
	`{"sequence_key":"s","contacts":[{"vars":{"a":"1","a":"2"}}]}`,
	`{"sequence_key":"s","contacts":[{"vars":{"n":0,"m":-0,"e":1E+2,"big":1e400}}]}`,
	`{"sequence_key":"s","contacts":[{"vars":{"n":01}}]}`,
	`{"sequence_key":"s","contacts":[{"vars":{"n":1.}}]}`,
	`{"sequence_key":"s","contacts":[{"vars":{"o":{"x":1}}}]}`,
	`{"sequence_key":"s","contacts":[{"vars":{"a":[1]}}]}`,
	`{"Sequence_Key":"s","contacts":[{"EMAIL":"a@example.com"}]}`,
	`{"sequence_key":"s","sequence_key":"t"}`,
	`{"sequence_key":"s","contacts":[{"email":"a@example.com","email":"b@example.com"}]}`,
	`{"sequence_key":"s","contacts":[{"email":"a\u0040example.com"}]}`,
	`{"sequence_key":"s","contacts":[{"email":"tab	inside"}]}`,
	`{"sequence_key":"s","contacts":[{"email":5}]}`,
	`{"sequence_key":"s","contacts":[null]}`,
	`{"sequence_key":"s","contacts":[{"extra":1}]}`,
	`{"sequence_key":"s","contacts":[{"email":"a@example.com"},]}`,
	`{"sequence_key":"s",}`,
	`{"sequence_key":"s"} {}`,
	`{"sequence_key":"s"}x`,
	`null`,
	`[]`,
	``,
	`{"sequence_key":"s","contacts":[{"email":"a@example.com"}]`,
	`{"sequence_key":"s","contacts":[{"vars":{"t":tru}}]}`,
	`{"sequence_key":"s","contacts":[{"vars":{"t":truex}}]}`,
	"{\"sequence_key\":\"\xff\"}",
}

// TestDecodeBatchJSON: the one-pass decoder takes the common shape and
// gives exactly encoding/json's result; a body it declines still decodes
// (or fails) through decodeBytes as before.
func TestDecodeBatchJSON(t *testing.T) {
	t.Parallel()
	accepted := 0
	for _, body := range batchJSONSeeds {
		if checkBatchJSON(t, []byte(body)) {
			accepted++
		}
	}
	if accepted < 7 {
		t.Fatalf("the decoder took %d of the seeds, want the 7 of the common shape at least", accepted)
	}
	// An object with more keys than any valid contact goes to
	// encoding/json (the decoder's repeat check is quadratic).
	var wide strings.Builder
	wide.WriteString(`{"sequence_key":"s","contacts":[{"vars":{`)
	for i := range 3 * maxObjectKeys {
		if i > 0 {
			wide.WriteByte(',')
		}
		fmt.Fprintf(&wide, `"v%d":"x"`, i)
	}
	wide.WriteString(`}}]}`)
	if checkBatchJSON(t, []byte(wide.String())) {
		t.Fatalf("took an object of %d keys", 3*maxObjectKeys)
	}
	var slow batchRequest
	if err := decodeBytes([]byte(wide.String()), &slow); err != nil || len(slow.Contacts[0].Vars) != 3*maxObjectKeys {
		t.Fatalf("encoding/json on the wide object: %v", err)
	}
	// A large batch of the shape the benchmark sends.
	var b strings.Builder
	b.WriteString(`{"sequence_key":"seq","contacts":[`)
	for i := range 2000 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"email":"c%d@example.com","first_name":"Ada","company":"Acme","vars":{"plan":"pro","n":%d}}`, i, i)
	}
	b.WriteString(`]}`)
	if !checkBatchJSON(t, []byte(b.String())) {
		t.Fatal("declined a plain batch of 2 000 contacts")
	}
}

// checkBatchJSON compares decodeBatchJSON with decodeBytes on body and
// reports whether the former took it.
func checkBatchJSON(t *testing.T, body []byte) bool {
	t.Helper()
	fast, ok := decodeBatchJSON(body)
	if !ok {
		return false
	}
	var slow batchRequest
	if err := decodeBytes(body, &slow); err != nil {
		t.Fatalf("%q: taken by the decoder, refused by encoding/json: %v", body, err)
	}
	if !reflect.DeepEqual(fast, slow) {
		f, _ := json.Marshal(fast)
		s, _ := json.Marshal(slow)
		t.Fatalf("%q: decoded as %s, encoding/json gives %s", body, f, s)
	}
	return true
}

// FuzzDecodeBatchJSON: whatever the decoder takes, encoding/json takes too
// and decodes to the same request.
func FuzzDecodeBatchJSON(f *testing.F) {
	for _, s := range batchJSONSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) { checkBatchJSON(t, body) })
}
