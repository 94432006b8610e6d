// Package apigw serves API Gateway HTTP API routes (payload format 2.0) from
// a plain net/http server, by turning each request into the event API Gateway
// would send and the handler's response back into HTTP. `flagline dev` uses it
// to run the same handler code the Lambda functions run.
package apigw

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
)

// Handler is a Lambda handler for HTTP API events.
type Handler func(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error)

// MaxBody is the largest request body API Gateway accepts (10 MB).
const MaxBody = 10 << 20

var pathParam = regexp.MustCompile(`\{([A-Za-z0-9_]+)\+?\}`)

// Handle registers h for routeKey ("POST /v1/sources/{source}/reports") on mux.
func Handle(mux *http.ServeMux, routeKey string, h Handler, log *slog.Logger) {
	method, path, _ := strings.Cut(routeKey, " ")
	var names []string
	for _, m := range pathParam.FindAllStringSubmatch(path, -1) {
		names = append(names, m[1])
	}
	pattern := method + " " + pathParam.ReplaceAllStringFunc(path, func(s string) string {
		if strings.HasSuffix(s, "+}") {
			return "{" + strings.TrimSuffix(strings.TrimPrefix(s, "{"), "+}") + "...}"
		}
		return s
	})
	mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		params := make(map[string]string, len(names))
		for _, n := range names {
			params[n] = r.PathValue(n)
		}
		ev, err := Event(r, routeKey, params)
		if err != nil {
			http.Error(w, err.Error(), http.StatusRequestEntityTooLarge)
			return
		}
		resp, err := h(r.Context(), ev)
		if err != nil {
			// API Gateway answers an invocation error with a bare 500.
			log.Error("handler failed", "route", routeKey, "error", err)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusInternalServerError)
			io.WriteString(w, `{"message":"Internal Server Error"}`)
			return
		}
		Write(w, resp)
	})
}

// Event builds the HTTP API v2 event for r on routeKey.
func Event(r *http.Request, routeKey string, params map[string]string) (events.APIGatewayV2HTTPRequest, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBody+1))
	if err != nil {
		return events.APIGatewayV2HTTPRequest{}, err
	}
	if len(body) > MaxBody {
		return events.APIGatewayV2HTTPRequest{}, fmt.Errorf("request body over %d bytes", MaxBody)
	}
	headers := make(map[string]string, len(r.Header)+1)
	for k, vs := range r.Header {
		headers[strings.ToLower(k)] = strings.Join(vs, ",")
	}
	headers["host"] = r.Host
	var query map[string]string
	if q := r.URL.Query(); len(q) > 0 {
		query = make(map[string]string, len(q))
		for k, vs := range q {
			query[k] = strings.Join(vs, ",")
		}
	}
	ip, _, _ := net.SplitHostPort(r.RemoteAddr)
	var cookies []string
	for _, c := range r.Cookies() {
		cookies = append(cookies, c.String())
	}
	now := time.Now()
	ev := events.APIGatewayV2HTTPRequest{
		Version:               "2.0",
		RouteKey:              routeKey,
		RawPath:               r.URL.EscapedPath(),
		RawQueryString:        r.URL.RawQuery,
		Cookies:               cookies,
		Headers:               headers,
		QueryStringParameters: query,
		PathParameters:        params,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RouteKey:   routeKey,
			AccountID:  "123456789012",
			Stage:      "$default",
			RequestID:  requestID(),
			APIID:      "local",
			DomainName: r.Host,
			Time:       now.UTC().Format("02/Jan/2006:15:04:05 -0700"),
			TimeEpoch:  now.UnixMilli(),
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{
				Method:    r.Method,
				Path:      r.URL.Path,
				Protocol:  r.Proto,
				SourceIP:  ip,
				UserAgent: r.UserAgent(),
			},
		},
	}
	if utf8.Valid(body) {
		ev.Body = string(body)
	} else {
		ev.Body, ev.IsBase64Encoded = base64.StdEncoding.EncodeToString(body), true
	}
	return ev, nil
}

// Write sends resp as API Gateway would.
func Write(w http.ResponseWriter, resp events.APIGatewayV2HTTPResponse) {
	for k, v := range resp.Headers {
		w.Header().Set(k, v)
	}
	for k, vs := range resp.MultiValueHeaders {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	for _, c := range resp.Cookies {
		w.Header().Add("Set-Cookie", c)
	}
	body := []byte(resp.Body)
	if resp.IsBase64Encoded {
		if b, err := base64.StdEncoding.DecodeString(resp.Body); err == nil {
			body = b
		}
	}
	status := resp.StatusCode
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	w.Write(body)
}

func requestID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
