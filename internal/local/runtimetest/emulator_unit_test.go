package runtimetest

import "testing"

func TestErrorType(t *testing.T) {
	for body, want := range map[string]string{
		`{"errorMessage":"boom","errorType":"errorString"}`:                   "errorString",
		`{"errorMessage":"boom","errorType":"Runtime.Panic","stackTrace":[]}`: "Runtime.Panic",
		`{"errorMessage":"boom"}`:                                             "Unhandled",
		`Task timed out after 3.00 seconds`:                                   "Sandbox.Timedout",
		`{"statusCode":202,"body":"{}"}`:                                      "",
		`{"errorType":"x","batchItemFailures":[]}`:                            "",
		`{"batchItemFailures":[]}`:                                            "",
		`"errorType"`:                                                         "",
	} {
		if got := errorType([]byte(body)); got != want {
			t.Errorf("errorType(%s) = %q, want %q", body, got, want)
		}
	}
}
