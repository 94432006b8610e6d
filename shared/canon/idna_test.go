package canon

import "testing"

func TestToASCIIHost(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"münchen.example", "xn--mnchen-3ya.example"},
		{"MÜNCHEN.example", "xn--mnchen-3ya.example"},
		{"例え.テスト", "xn--r8jz45g.xn--zckzah"},
		{"пример.испытание", "xn--e1afmkfd.xn--80akhbyknj4f"},
		{"مثال.example", "xn--mgbh0fb.example"},
		{"faß.de", "xn--fa-hia.de"},
		{"ελληνικά.example", "xn--hxargifdar.example"},
		{"ไทย.example", "xn--o3cw4h.example"},
		{"\u1112\u1161\u11ab\u1100\u116e\u11a8.example", "xn--3e0b707e.example"}, // conjoining jamo
		{"a\u0302\u0301.example", "xn--rkg.example"},                             // a + circumflex + acute = ấ
		{"ｅｘａｍｐｌｅ．com", "example.com"},
		{"bücher.example。", "xn--bcher-kva.example"},
	} {
		got, ok := toASCIIHost(tc.in)
		if !ok || got != tc.want {
			t.Errorf("toASCIIHost(%q) = %q, %v; want %q", tc.in, got, ok, tc.want)
		}
		if ok {
			if e := checkDNSName(got); e != nil {
				t.Errorf("checkDNSName(%q) = %v", got, e)
			}
		}
	}
	for _, in := range []string{
		"a b.example", "\u3164.example", "\u0301a.example", "xn--ü.example", "a..example", "a/b.example",
		string([]byte{0xff}) + ".example",
	} {
		// Non-LDH ASCII is left to checkDNSName, which runs after.
		if got, ok := toASCIIHost(in); ok && checkDNSName(got) == nil {
			t.Errorf("toASCIIHost(%q) = %q, want failure", in, got)
		}
	}
}

func TestValidACELabel(t *testing.T) {
	for _, l := range []string{"xn--bcher-kva", "xn--r8jz45g", "xn--3e0b707e", "xn--fa-hia"} {
		if !validACELabel(l) {
			t.Errorf("validACELabel(%q) = false", l)
		}
	}
	for _, l := range []string{
		"xn--", "xn--abc-", "xn---abc", "xn--bcher-kv", "xn--bcher-kva-", "xn--zzzzzzzzzzzzzzzzzzzzzzzz",
		"xn--bcher-kva9",
	} {
		if validACELabel(l) {
			t.Errorf("validACELabel(%q) = true", l)
		}
	}
}
