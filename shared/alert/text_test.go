package alert_test

import (
	"testing"

	"github.com/flagline/flagline/shared/alert"
)

func TestASCII(t *testing.T) {
	tests := []struct{ in, want string }{
		{"facebook.com", "facebook.com"},
		{"Café Ñandú", "Cafe Nandu"},
		{"Straße Łódź Øresund Æther", "Strasse Lodz Oresund AEther"},
		{"wait…", "wait..."},
		{"“quoted” – dash", "\"quoted\" - dash"},
		{"line\nbreak\tand\x00control", "line break and control"},
		{"  spaces   collapse  ", "spaces collapse"},
		{"телеграм", ""},
		{"t.me/телеграм", "t.me/"},
		{"ｆｕｌｌｗｉｄｔｈ", "fullwidth"},
		{"🚤 boat", "boat"},
		{"\xff\xfe", ""},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			if got := alert.ASCII(tc.in); got != tc.want {
				t.Errorf("ASCII(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}
