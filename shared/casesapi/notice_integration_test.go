//go:build integration

package casesapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/flagline/flagline/shared/aggregate"
	"github.com/flagline/flagline/shared/canon"
	"github.com/flagline/flagline/shared/casesapi"
	"github.com/flagline/flagline/shared/casestore"
	"github.com/flagline/flagline/shared/contacts"
	"github.com/flagline/flagline/shared/reportstore"
	"github.com/flagline/flagline/shared/streamimage"
)

// noticeReport is one report item as the intake stores it, with the
// reporter's own name and address (which must never reach a notice).
type noticeReport struct {
	aggregate.Report
	NotifierName  string `dynamodbav:"notifier_name"`
	NotifierEmail string `dynamodbav:"notifier_email"`
}

// TestNoticeOfACaseFromThreeSources: three sources report one post; the
// aggregate function merges them into a case on moto; the real cases
// handler gives Italy's desk its notice (JSON and text), refuses France's
// desk as it refuses a missing case, and takedown_requested records the
// notice's id on the event and the case.
func TestNoticeOfACaseFromThreeSources(t *testing.T) {
	ctx := context.Background()
	s := newStack(t)
	// Italy's desk as `flagline contacts apply` stores it.
	s.put(t, contacts.Key("it-polpost"), contacts.SortKey, contacts.TypeContactPoint, contacts.ContactPoint{
		ID: "it-polpost", Name: "Polizia Postale e delle Comunicazioni", Countries: []string{"IT"}, SMSMinSeverity: casestore.Critical,
		Endpoints: []contacts.Endpoint{{Protocol: contacts.SMS, Address: "+390600000000"}, {Protocol: contacts.Email, Address: "alerts@polpost.example.it"}},
	})

	u, err := canon.Parse("https://m.facebook.com/groups/777/posts/1001/?mibextid=abc&utm_source=share")
	if err != nil {
		t.Fatal(err)
	}
	received := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	reports := []struct {
		source, category, name, email, explanation string
		countries                                  []string
	}{
		{"seawatch-monitoring", "smuggling_offer", "Anna Keller", "anna.keller@monitor.example.org",
			"Post offers boat crossings from Libya to Lampedusa for 2,500 EUR, contact by WhatsApp.", []string{"IT", "MT"}},
		{"it-webform", "transport", "Giulia Bianchi", "giulia.b@mail.example.it",
			"Same group advertises a van from Agrigento to the French border. Write to me at giulia.b@mail.example.it for screenshots.", []string{"IT"}},
		{"platform-ts", "smuggling_offer", "Trust and Safety Analyst 7", "analyst7@platform.example.com",
			"Account previously removed for identical offers; new account, same phone number.", []string{"IT"}},
	}
	var recs []events.DynamoDBEventRecord
	for i, r := range reports {
		item, err := attributevalue.MarshalMap(noticeReport{
			Report: aggregate.Report{
				CaseID: u.CaseID, CanonicalURL: u.Canonical, Category: r.category, Countries: r.countries, Source: r.source,
				NotifierHash: fmt.Sprintf("%064x", i+1), Explanation: r.explanation,
				ReceivedAt: received.Add(time.Duration(i) * time.Minute).Format(time.RFC3339Nano), ReportID: fmt.Sprintf("rep_%d", i),
				Type: reportstore.TypeReport, PK: fmt.Sprintf("REPORT#%s#d-%d", r.source, i), ExpiresAt: received.Add(reportstore.DefaultRetention).Unix(),
			},
			NotifierName: r.name, NotifierEmail: r.email,
		})
		if err != nil {
			t.Fatal(err)
		}
		rec := events.DynamoDBEventRecord{EventName: "INSERT"}
		rec.Change.NewImage = streamimage.FromSDK(item)
		rec.Change.SequenceNumber = fmt.Sprintf("%021d", i+1)
		recs = append(recs, rec)
	}
	agg := &aggregate.Handler{DB: s.db, Table: s.table, Rules: casestore.Rules{Thresholds: casestore.DefaultThresholds}, Log: slog.New(slog.NewJSONHandler(io.Discard, nil))}
	ev := events.DynamoDBTimeWindowEvent{DynamoDBEvent: events.DynamoDBEvent{Records: recs}}
	ev.ShardID = "shardId-00000001"
	if resp, err := agg.Handle(ctx, ev); err != nil || len(resp.BatchItemFailures) > 0 {
		t.Fatalf("aggregate: %v %v", err, resp.BatchItemFailures)
	}

	notice := func(token, accept string) events.APIGatewayV2HTTPResponse {
		return s.do(t, request(casesapi.RouteNotice, map[string]string{"case_id": u.CaseID}, noticeRequest(token, accept)))
	}
	resp := notice(s.tokens["it-polpost"], "")
	if resp.StatusCode != 200 || resp.Headers["Content-Type"] != "application/json" {
		t.Fatalf("%d %v:\n%s", resp.StatusCode, resp.Headers, resp.Body)
	}
	t.Logf("JSON notice:\n%s", resp.Body)
	var n casesapi.Notice
	if err := json.Unmarshal([]byte(resp.Body), &n); err != nil {
		t.Fatal(err)
	}
	wantID := u.CaseID + "-notice-it-polpost"
	e := n.Explanation
	switch {
	case n.NoticeID != wantID || n.CaseID != u.CaseID || n.Reference != "FL-"+u.CaseID:
		t.Errorf("ids %s %s %s", n.NoticeID, n.CaseID, n.Reference)
	case n.Category != "smuggling_offer" || strings.Join(n.Categories, ",") != "smuggling_offer,transport":
		t.Errorf("categories %s %q", n.Category, n.Categories)
	case len(n.URLs) != 1 || n.URLs[0] != u.Canonical: // (b)
		t.Errorf("(b) urls %q, want %s", n.URLs, u.Canonical)
	case e.ReportCount != 3 || e.Sources != 3 || strings.Join(e.Countries, ",") != "IT,MT" || len(e.FromReports) != 3: // (a)
		t.Errorf("(a) explanation %+v", e)
	case !strings.Contains(e.Summary, "reported 3 times by 3 distinct reporting bodies"):
		t.Errorf("(a) summary %q", e.Summary)
	case n.Notifier.Name != "Polizia Postale e delle Comunicazioni" || n.Notifier.Email == nil || *n.Notifier.Email != "alerts@polpost.example.it": // (c)
		t.Errorf("(c) notifier %s", resp.Body)
	case !strings.Contains(n.GoodFaithStatement, "bona fide belief"): // (d)
		t.Errorf("(d) %q", n.GoodFaithStatement)
	}

	text := notice(s.tokens["it-polpost"], "text/plain")
	if text.StatusCode != 200 || text.Headers["Content-Type"] != "text/plain; charset=utf-8" || !strings.Contains(text.Body, "(c) Notifier\n  Name:           Polizia Postale e delle Comunicazioni\n") {
		t.Fatalf("text %d %v:\n%s", text.StatusCode, text.Headers, text.Body)
	}
	t.Logf("text notice:\n%s", text.Body)
	// No reporter's name or address, in either form.
	for _, r := range reports {
		for _, pii := range []string{r.name, r.email} {
			if strings.Contains(resp.Body, pii) || strings.Contains(text.Body, pii) {
				t.Errorf("the notice carries reporter data %q", pii)
			}
		}
	}

	// Scope: France's desk gets the answer a missing case gets.
	missing := s.do(t, request(casesapi.RouteNotice, map[string]string{"case_id": "nosuchcase000000"}, noticeRequest(s.tokens["fr-ocrieet"], "")))
	fr := notice(s.tokens["fr-ocrieet"], "")
	if fr.StatusCode != 404 || fr.Body != missing.Body || errorCode(t, fr) != "case_not_found" {
		t.Errorf("France: %d %s, want the missing case's 404 %s", fr.StatusCode, fr.Body, missing.Body)
	}
	if coord := notice(s.tokens["eu-coord"], ""); coord.StatusCode != 200 || !strings.Contains(coord.Body, `"notice_id":"`+u.CaseID+`-notice-eu-coord"`) {
		t.Errorf("coordinator: %d %s", coord.StatusCode, coord.Body)
	}

	// Recording the takedown links the notice: the event and the case.
	act := func(body string) events.APIGatewayV2HTTPResponse {
		r := bearer(casesapi.RouteAction, u.CaseID, s.tokens["it-polpost"])
		r.Body = body
		return s.do(t, r)
	}
	if a := act(`{"action":"acknowledge"}`); a.StatusCode != 200 {
		t.Fatalf("acknowledge %d %s", a.StatusCode, a.Body)
	}
	a := act(`{"action":"takedown_requested","platform_ref":"Meta LE portal 55120"}`)
	var answer struct {
		Case struct {
			NoticeID string `json:"notice_id"`
		} `json:"case"`
		Event casestore.Event `json:"event"`
	}
	if err := json.Unmarshal([]byte(a.Body), &answer); err != nil || a.StatusCode != 200 || answer.Event.NoticeID != wantID || answer.Case.NoticeID != wantID {
		t.Fatalf("takedown_requested %d %s (%v), want notice_id %s on the case and the event", a.StatusCode, a.Body, err, wantID)
	}
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.table), Key: map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: casestore.Key(u.CaseID)}, "sk": &types.AttributeValueMemberS{Value: casestore.SortKey},
	}, ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	var stored casestore.Case
	if err := attributevalue.UnmarshalMap(out.Item, &stored); err != nil || stored.NoticeID != wantID || stored.Status != casestore.StatusTakedownRequested {
		t.Errorf("stored case notice_id %q status %q (%v)", stored.NoticeID, stored.Status, err)
	}
	detail := s.do(t, bearer(casesapi.RouteDetail, u.CaseID, s.tokens["it-polpost"]))
	var got struct {
		Timeline []casestore.Event `json:"timeline"`
	}
	if err := json.Unmarshal([]byte(detail.Body), &got); err != nil {
		t.Fatal(err)
	}
	linked := 0
	for _, ev := range got.Timeline {
		if ev.NoticeID != "" {
			linked++
			if ev.Type != "takedown_requested" || ev.NoticeID != wantID {
				t.Errorf("event %+v carries notice %s", ev, ev.NoticeID)
			}
		}
	}
	if linked != 1 {
		t.Errorf("%d timeline events carry a notice id, want the takedown_requested one: %s", linked, detail.Body)
	}
}
