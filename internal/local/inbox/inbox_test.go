package inbox_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"

	"github.com/flagline/flagline/internal/local/inbox"
)

func ids(list []inbox.Alert) []string {
	out := make([]string, len(list))
	for i, a := range list {
		out[i] = a.AlertID + "@" + a.ContactPoint
	}
	return out
}

func TestAddDedupe(t *testing.T) {
	in := inbox.New(0)
	steps := []struct {
		alertID, contactPoint string
		want                  bool
	}{
		{"c1-1", "it-polpost", true},
		{"c1-1", "it-polpost", false}, // a repeat delivery
		{"c1-1", "eu-coordinator", true},
		{"c1-2", "it-polpost", true}, // the same case, a higher level
		{"c1-1", "eu-coordinator", false},
	}
	for i, s := range steps {
		if got := in.Add(sample(s.alertID, s.contactPoint)); got != s.want {
			t.Errorf("step %d: Add(%s, %s) = %v, want %v", i, s.alertID, s.contactPoint, got, s.want)
		}
	}
	want := []string{"c1-2@it-polpost", "c1-1@eu-coordinator", "c1-1@it-polpost"}
	if got := ids(in.List()); !slices.Equal(got, want) {
		t.Errorf("List = %v, want %v", got, want)
	}
}

func TestNewestFirst(t *testing.T) {
	in := inbox.New(10)
	for i := range 4 {
		in.Add(sample(fmt.Sprintf("a%d", i), "it-polpost"))
	}
	want := []string{"a3@it-polpost", "a2@it-polpost", "a1@it-polpost", "a0@it-polpost"}
	if got := ids(in.List()); !slices.Equal(got, want) {
		t.Errorf("List = %v, want %v", got, want)
	}
}

func TestBounded(t *testing.T) {
	in := inbox.New(3)
	for i := range 5 {
		if !in.Add(sample(fmt.Sprintf("a%d", i), "it-polpost")) {
			t.Fatalf("a%d refused", i)
		}
	}
	want := []string{"a4@it-polpost", "a3@it-polpost", "a2@it-polpost"}
	if got := ids(in.List()); !slices.Equal(got, want) || in.Len() != 3 {
		t.Errorf("List = %v (Len %d), want %v", got, in.Len(), want)
	}
	// Kept alerts are still recognised as repeats; a dropped one is new
	// again.
	if in.Add(sample("a2", "it-polpost")) {
		t.Error("a kept alert was added twice")
	}
	if !in.Add(sample("a0", "it-polpost")) {
		t.Error("a dropped alert was refused")
	}
}

func TestZeroValueKeepsDefaultSize(t *testing.T) {
	var in inbox.Inbox
	for i := range inbox.DefaultSize + 20 {
		in.Add(sample(fmt.Sprintf("a%d", i), "it-polpost"))
	}
	list := in.List()
	if len(list) != inbox.DefaultSize || list[0].AlertID != fmt.Sprintf("a%d", inbox.DefaultSize+19) || list[len(list)-1].AlertID != "a20" {
		t.Errorf("kept %d, newest %s, oldest %s", len(list), list[0].AlertID, list[len(list)-1].AlertID)
	}
}

// TestListIsACopy: callers cannot change what the inbox holds.
func TestListIsACopy(t *testing.T) {
	in := inbox.New(0)
	a := sample("a1", "it-polpost")
	in.Add(a)
	a.Countries[0] = "XX"
	list := in.List()
	list[0].Countries[0] = "YY"
	list[0].Subject = "changed"
	if got := in.List()[0]; got.Countries[0] != "IT" || got.Subject == "changed" {
		t.Errorf("inbox holds %+v", got)
	}
	in.Add(inbox.Alert{AlertID: "a2", ContactPoint: "it-polpost"})
	if got := in.List()[0].Countries; got == nil || len(got) != 0 {
		t.Errorf("nil countries kept as %#v, want []", got)
	}
}

// TestConcurrentUse runs under -race: adds, lists and page views at once.
func TestConcurrentUse(t *testing.T) {
	in := inbox.New(50)
	h := in.Handler()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 100 {
				in.Add(sample(fmt.Sprintf("a%d", i%70), fmt.Sprintf("cp-%d", g%3)))
				if i%10 == 0 {
					in.List()
					for _, path := range []string{inbox.PagePath, inbox.JSONPath} {
						rec := httptest.NewRecorder()
						h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
						if rec.Code != http.StatusOK {
							t.Errorf("%s: %d", path, rec.Code)
						}
					}
				}
			}
		})
	}
	wg.Wait()
	list := in.List()
	if len(list) != 50 {
		t.Errorf("kept %d alerts, want 50", len(list))
	}
	seen := map[string]bool{}
	for _, id := range ids(list) {
		if seen[id] {
			t.Errorf("%s kept twice", id)
		}
		seen[id] = true
	}
}
