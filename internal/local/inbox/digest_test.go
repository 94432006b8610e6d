package inbox_test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"

	"github.com/flagline/flagline/internal/local/inbox"
	"github.com/flagline/flagline/shared/alert"
	"github.com/flagline/flagline/shared/casestore"
	"github.com/flagline/flagline/shared/silences"
)

// groupDigest is a desk's digest of grouped alerts as the alert function
// publishes it: the payload of testdata/group-digest.json as the "default"
// message, with the attributes a digest carries.
func groupDigest(t testing.TB) *sns.PublishInput {
	t.Helper()
	payload := readFile(t, "testdata/group-digest.json")
	var p struct {
		AlertID, ContactPoint, Severity, Subject string
	}
	if err := json.Unmarshal(payload, &p); err != nil {
		t.Fatal(err)
	}
	message, err := json.Marshal(map[string]string{"default": string(payload), "email": "(email)", "sms": "(sms)"})
	if err != nil {
		t.Fatal(err)
	}
	str := func(v string) snstypes.MessageAttributeValue {
		return snstypes.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(v)}
	}
	return &sns.PublishInput{
		TopicArn:         aws.String("arn:aws:sns:eu-west-1:123456789012:flagline-alerts"),
		Message:          aws.String(string(message)),
		MessageStructure: aws.String("json"),
		Subject:          aws.String("[Flagline] Digest: 3 cases for gr-hellenic-police"),
		MessageAttributes: map[string]snstypes.MessageAttributeValue{
			alert.AttrContactPoint: str("gr-hellenic-police"),
			alert.AttrKind:         str(string(alert.KindDigest)),
			alert.AttrAlertID:      str("digest-gr-hellenic-police-20261127T091302Z"),
			alert.AttrSeverity:     str("high"),
		},
	}
}

// groupCases are the cases of testdata/group-digest.json.
var groupCases = []inbox.DigestCase{
	{
		CaseID: "k3v9wq2x7p4mzr8d", AlertID: "k3v9wq2x7p4mzr8d-2-gr-hellenic-police", Kind: "update", Level: 2, FromLevel: 1,
		Severity: "high", Countries: []string{"GR", "IT"}, Category: "smuggling_offer",
		CanonicalURL: "https://facebook.com/groups/123/posts/456",
	},
	{
		CaseID: "p7t2mx9qk4wz3n6b", AlertID: "p7t2mx9qk4wz3n6b-1-gr-hellenic-police", Kind: "new", Level: 1,
		Severity: "medium", Countries: []string{"GR"}, Category: "forged_documents",
		CanonicalURL: "https://t.me/s/crossings_gr/812",
	},
	{
		CaseID: "z4b8rn2vw6ke9q1m", AlertID: "z4b8rn2vw6ke9q1m-1-gr-hellenic-police-for-cy-police", Kind: "new", Level: 1,
		Severity: "low", Countries: []string{"CY"}, Category: "transport_offer",
		CanonicalURL: "https://www.tiktok.com/@ferry_cy/video/73312", SilencedFor: "cy-police",
	},
}

func TestParseGroupDigest(t *testing.T) {
	got, err := inbox.Parse(envelope(t, groupDigest(t)), "gr-hellenic-police", received)
	if err != nil {
		t.Fatal(err)
	}
	want := inbox.Alert{
		AlertID: "digest-gr-hellenic-police-20261127T091302Z", Kind: "digest", Severity: "high",
		Countries: []string{}, ContactPoint: "gr-hellenic-police",
		Subject:    "[Flagline] Digest: 3 cases for gr-hellenic-police",
		Email:      "FLAGLINE DIGEST\n\n3 cases for gr-hellenic-police since 09:12.\n",
		SMS:        "Flagline: 3 cases (highest HIGH) for gr-hellenic-police. See email.",
		ReceivedAt: received,
		Cases:      groupCases,
		CaseCount:  3,
	}
	if !equal(got, want) {
		t.Errorf("Parse =\n%+v\nwant\n%+v", got, want)
	}

	// Delivered raw, the payload alone says the same.
	raw, err := inbox.Parse(readFile(t, "testdata/group-digest.json"), "gr-hellenic-police", received)
	if err != nil {
		t.Fatal(err)
	}
	if !equal(raw, want) {
		t.Errorf("raw Parse =\n%+v\nwant\n%+v", raw, want)
	}
}

// catchUp is a silence's catch-up digest for cy-police listing n missed
// cases.
func catchUp(t testing.TB, n int) *sns.PublishInput {
	t.Helper()
	d := &alert.CatchUp{
		Silence: silences.Silence{
			ID: "s1", ContactPoint: "cy-police", Reason: "training day",
			From: firstSeen, Until: firstSeen.Add(8 * time.Hour),
		},
		To: []string{"eu-coordinator"},
	}
	for i := range n {
		severity := casestore.Medium
		if i == 1 {
			severity = casestore.Critical
		}
		d.Missed = append(d.Missed, alert.Missed{
			CaseID: fmt.Sprintf("case-%04d", i), Kind: alert.KindNew, Level: 1 + i%3, Severity: severity,
			At: firstSeen.Add(time.Duration(i) * time.Minute),
		})
	}
	m, err := alert.RenderCatchUp(d)
	if err != nil {
		t.Fatal(err)
	}
	in, err := alert.CatchUpPublishInput("arn:aws:sns:eu-west-1:123456789012:flagline-alerts", d, m)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

func TestParseCatchUpDigest(t *testing.T) {
	got, err := inbox.Parse(envelope(t, catchUp(t, 2)), "cy-police", received)
	if err != nil {
		t.Fatal(err)
	}
	want := []inbox.DigestCase{
		{CaseID: "case-0000", Kind: "new", Level: 1, Severity: "medium", At: firstSeen},
		{CaseID: "case-0001", Kind: "new", Level: 2, Severity: "critical", At: firstSeen.Add(time.Minute)},
	}
	if got.AlertID != "cy-police-silence-s1" || got.Kind != "digest" || got.Severity != "critical" || got.CaseCount != 2 ||
		len(got.Cases) != 2 || !strings.HasPrefix(got.Subject, "[Flagline] Digest: 2 cases missed") {
		t.Fatalf("Parse = %+v", got)
	}
	for i := range want {
		g := got.Cases[i]
		if !g.At.Equal(want[i].At) {
			t.Errorf("case %d at %v, want %v", i, g.At, want[i].At)
		}
		g.At = want[i].At
		if !reflect.DeepEqual(g, want[i]) {
			t.Errorf("case %d = %+v, want %+v", i, g, want[i])
		}
	}
}

// TestParseDigestListsSome: a digest about more cases than its payload
// lists says how many there were.
func TestParseDigestListsSome(t *testing.T) {
	got, err := inbox.Parse(envelope(t, catchUp(t, alert.MaxDigestCases+7)), "cy-police", received)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Cases) != alert.MaxDigestCases || got.CaseCount != alert.MaxDigestCases+7 {
		t.Errorf("%d cases listed of %d", len(got.Cases), got.CaseCount)
	}
}

// TestParseDigestCasesFirst: `cases` is the digest's list; `missed` is
// read only without it.
func TestParseDigestCasesFirst(t *testing.T) {
	for _, tc := range []struct {
		name, payload string
		want          []string
		count         int
	}{
		{"cases", `{"alert_id":"d","kind":"digest","case_count":1,"cases":[{"case_id":"c1","kind":"new","level":1,"severity":"low"}],"missed_count":1,"missed":[{"case_id":"m1"}]}`, []string{"c1"}, 1},
		{"missed", `{"alert_id":"d","kind":"digest","missed_count":2,"missed":[{"case_id":"m1"},{"case_id":"m2"}]}`, []string{"m1", "m2"}, 2},
		{"empty cases, missed", `{"alert_id":"d","kind":"digest","cases":[],"missed":[{"case_id":"m1"}],"missed_count":1}`, []string{"m1"}, 1},
		{"a count below the list", `{"alert_id":"d","kind":"digest","case_count":1,"cases":[{"case_id":"c1"},{"case_id":"c2"}]}`, []string{"c1", "c2"}, 2},
		{"neither", `{"alert_id":"d","kind":"digest","missed":[],"missed_count":0}`, nil, 0},
		{"not a digest", `{"alert_id":"a","case_id":"c","kind":"new","level":1}`, nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := inbox.Parse([]byte(tc.payload), "cp", received)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, c := range got.Cases {
				ids = append(ids, c.CaseID)
			}
			if !slices.Equal(ids, tc.want) || got.CaseCount != tc.count || (tc.want == nil && got.Cases != nil) {
				t.Errorf("cases %q (%#v), count %d; want %q, %d", ids, got.Cases, got.CaseCount, tc.want, tc.count)
			}
		})
	}
	// A case list of the wrong shape is not an alert payload.
	if _, err := inbox.Parse([]byte(`{"alert_id":"d","cases":[{"case_id":"c1","level":"two"}]}`), "cp", received); err == nil {
		t.Error("a case with a text level was read")
	}
}

func TestDigestJSON(t *testing.T) {
	in := inbox.New(0)
	d, err := inbox.Parse(envelope(t, groupDigest(t)), "gr-hellenic-police", received)
	if err != nil {
		t.Fatal(err)
	}
	in.Add(d)
	c, err := inbox.Parse(envelope(t, catchUp(t, 1)), "cy-police", received)
	if err != nil {
		t.Fatal(err)
	}
	in.Add(c)
	var list []map[string]any
	if err := json.Unmarshal(get(t, in.Handler(), inbox.JSONPath).Body.Bytes(), &list); err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 {
		t.Fatalf("JSON = %v", list)
	}
	catch, group := list[0], list[1]
	if group["kind"] != "digest" || group["case_count"] != 3.0 || catch["case_count"] != 1.0 {
		t.Errorf("JSON = %v", list)
	}
	cases, _ := group["cases"].([]any)
	if len(cases) != 3 {
		t.Fatalf("group digest cases: %v", group["cases"])
	}
	want := []map[string]any{
		{"case_id": "k3v9wq2x7p4mzr8d", "alert_id": "k3v9wq2x7p4mzr8d-2-gr-hellenic-police", "kind": "update", "level": 2.0, "from_level": 1.0,
			"severity": "high", "countries": []any{"GR", "IT"}, "category": "smuggling_offer", "canonical_url": "https://facebook.com/groups/123/posts/456"},
		{"case_id": "p7t2mx9qk4wz3n6b", "alert_id": "p7t2mx9qk4wz3n6b-1-gr-hellenic-police", "kind": "new", "level": 1.0,
			"severity": "medium", "countries": []any{"GR"}, "category": "forged_documents", "canonical_url": "https://t.me/s/crossings_gr/812"},
		{"case_id": "z4b8rn2vw6ke9q1m", "alert_id": "z4b8rn2vw6ke9q1m-1-gr-hellenic-police-for-cy-police", "kind": "new", "level": 1.0,
			"severity": "low", "countries": []any{"CY"}, "category": "transport_offer", "canonical_url": "https://www.tiktok.com/@ferry_cy/video/73312",
			"silenced_for": "cy-police"},
	}
	for i := range want {
		if !reflect.DeepEqual(cases[i], want[i]) {
			t.Errorf("case %d = %v\nwant %v", i, cases[i], want[i])
		}
	}
	missed, _ := catch["cases"].([]any)
	if len(missed) != 1 || !reflect.DeepEqual(missed[0], map[string]any{
		"case_id": "case-0000", "kind": "new", "level": 1.0, "severity": "medium", "at": "2026-11-27T08:30:00Z",
	}) {
		t.Errorf("catch-up cases: %v", catch["cases"])
	}
}

func TestPageShowsDigestCases(t *testing.T) {
	in := inbox.New(0)
	d, err := inbox.Parse(envelope(t, groupDigest(t)), "gr-hellenic-police", received)
	if err != nil {
		t.Fatal(err)
	}
	in.Add(d)
	in.Add(sample("zz-1", "it-polpost"))
	body := get(t, in.Handler(), inbox.PagePath).Body.String()

	// The cases are listed inside the digest's article, in order.
	start := strings.Index(body, `<span class="cp">gr-hellenic-police</span>`)
	if start < 0 {
		t.Fatalf("no digest:\n%s", body)
	}
	article := body[start:]
	article = article[:strings.Index(article, "</article>")]
	last := 0
	for _, want := range []string{
		`<span class="tag kind">digest</span>`,
		`<h2>Cases in this digest (3)</h2>`,
		`<tr class="case sev-high">`, `<td><code>k3v9wq2x7p4mzr8d</code></td>`, `<td>update</td>`, `<td>L1 → L2</td>`, `<td class="sev">high</td>`, `<td>GR, IT</td>`,
		`smuggling_offer <code class="url">https://facebook.com/groups/123/posts/456</code>`,
		`<tr class="case sev-medium">`, `<td><code>p7t2mx9qk4wz3n6b</code></td>`, `<td>new</td>`, `<td>L1</td>`, `<td class="sev">medium</td>`,
		`<tr class="case sev-low">`, `<td><code>z4b8rn2vw6ke9q1m</code></td>`, `<td class="sev">low</td>`, ` · for <code>cy-police</code>, silenced`,
	} {
		i := strings.Index(article[last:], want)
		if i < 0 {
			t.Fatalf("the digest lacks %s after position %d:\n%s", want, last, article)
		}
		last += i + len(want)
	}
	if strings.Contains(article, "case <code></code>") {
		t.Error("the digest shows an empty case id")
	}
	// An alert about one case has no case list.
	if n := strings.Count(body, `<section class="cases">`); n != 1 {
		t.Errorf("%d case lists, want 1", n)
	}
}

func TestPageDigestListsSome(t *testing.T) {
	in := inbox.New(0)
	d, err := inbox.Parse(envelope(t, catchUp(t, alert.MaxDigestCases+7)), "cy-police", received)
	if err != nil {
		t.Fatal(err)
	}
	in.Add(d)
	body := get(t, in.Handler(), inbox.PagePath).Body.String()
	for _, want := range []string{
		fmt.Sprintf("<h2>Cases in this digest (%d of %d)</h2>", alert.MaxDigestCases, alert.MaxDigestCases+7),
		"and 7 more, not listed in the digest",
		`<time datetime="2026-11-27T08:30:00Z">`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	if n := strings.Count(body, `<tr class="case `); n != alert.MaxDigestCases {
		t.Errorf("%d rows, want %d", n, alert.MaxDigestCases)
	}
}

// TestPageEscapesDigestCases: a digest's cases come from reports too.
func TestPageEscapesDigestCases(t *testing.T) {
	in := inbox.New(0)
	in.Add(inbox.Alert{
		AlertID: "d1", ContactPoint: "gr-hellenic-police", Kind: "digest",
		Cases: []inbox.DigestCase{{
			CaseID: `<img src=x onerror=alert(1)>`, Kind: `<u>new</u>`, Level: 1, Severity: `high"><script>alert(2)</script>`,
			Countries: []string{`<b>GR</b>`}, Category: `<i>cat</i>`, CanonicalURL: `https://x.example/"><script>alert(3)</script>`,
			SilencedFor: `<s>cy</s>`, AlertID: `</code><iframe src=x>`,
		}},
	})
	body := get(t, in.Handler(), inbox.PagePath).Body.String()
	for _, bad := range []string{"<img src=x", "<u>new", "<script>alert(2)", "<script>alert(3)", "<b>GR", "<i>cat", "<s>cy", "<iframe"} {
		if strings.Contains(body, bad) {
			t.Errorf("page contains %s unescaped", bad)
		}
	}
	for _, want := range []string{
		"<td><code>&lt;img src=x onerror=alert(1)&gt;</code></td>",
		"<td>&lt;u&gt;new&lt;/u&gt;</td>",
		`<tr class="case sev-other">`,
		`<code class="url">https://x.example/&#34;&gt;&lt;script&gt;alert(3)&lt;/script&gt;</code>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s", want)
		}
	}
}

func TestLineDigest(t *testing.T) {
	d, err := inbox.Parse(envelope(t, groupDigest(t)), "gr-hellenic-police", received)
	if err != nil {
		t.Fatal(err)
	}
	want := "ALERT gr-hellenic-police L0 high     digest     -      (3 cases) [Flagline] Digest: 3 cases for gr-hellenic-police" +
		"  |  SMS: Flagline: 3 cases (highest HIGH) for gr-hellenic-police. See email."
	if got := inbox.Line(d); got != want {
		t.Errorf("Line =\n%s\nwant\n%s", got, want)
	}

	some, err := inbox.Parse(envelope(t, catchUp(t, alert.MaxDigestCases+7)), "cy-police", received)
	if err != nil {
		t.Fatal(err)
	}
	if got := inbox.Line(some); !strings.Contains(got, " digest     -      (500 of 507 cases) [Flagline] Digest: 507 cases missed") {
		t.Errorf("Line = %s", got)
	}
	one, err := inbox.Parse(envelope(t, catchUp(t, 1)), "cy-police", received)
	if err != nil {
		t.Fatal(err)
	}
	if got := inbox.Line(one); !strings.Contains(got, " (1 case) [Flagline] Digest: 1 case missed") {
		t.Errorf("Line = %s", got)
	}
	// An alert about one case says nothing of cases.
	if got := inbox.Line(sample("a-1", "it-polpost")); strings.Contains(got, " case) ") || strings.Contains(got, " cases) [") {
		t.Errorf("Line = %s", got)
	}
}

// TestListCopiesCases: callers cannot change a digest's cases in the inbox.
func TestListCopiesCases(t *testing.T) {
	in := inbox.New(0)
	// A deep copy, so that groupCases stays as it is whatever the inbox
	// does.
	cases := slices.Clone(groupCases)
	for i := range cases {
		cases[i].Countries = slices.Clone(cases[i].Countries)
	}
	a := inbox.Alert{AlertID: "d1", ContactPoint: "cp", Kind: "digest", Cases: cases, CaseCount: 3}
	in.Add(a)
	a.Cases[0].CaseID = "changed"
	a.Cases[0].Countries[0] = "XX"
	list := in.List()
	list[0].Cases[1].Kind = "changed"
	list[0].Cases[1].Countries[0] = "YY"
	got := in.List()[0].Cases
	if !reflect.DeepEqual(got, groupCases) {
		t.Errorf("inbox holds %+v", got)
	}
}
