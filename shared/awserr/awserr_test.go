package awserr_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/aws/smithy-go"

	"github.com/flagline/flagline/shared/awserr"
)

func TestRetryable(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"DynamoDB throttling", &smithy.GenericAPIError{Code: "ProvisionedThroughputExceededException"}, true},
		{"SNS throttling", &smithy.GenericAPIError{Code: "Throttled"}, true},
		{"KMS throttling on an encrypted topic", &smithy.GenericAPIError{Code: "KMSThrottling"}, true},
		{"server fault", &smithy.GenericAPIError{Code: "Whatever", Fault: smithy.FaultServer}, true},
		{"timeout", fmt.Errorf("put: %w", context.DeadlineExceeded), true},
		{"no answer", &smithy.OperationError{ServiceID: "DynamoDB", OperationName: "PutItem", Err: errors.New("connection refused")}, true},
		{"cancelled", &smithy.OperationError{ServiceID: "DynamoDB", OperationName: "PutItem", Err: context.Canceled}, false},
		{"validation", &smithy.GenericAPIError{Code: "ValidationException", Fault: smithy.FaultClient}, false},
		{"access denied", &smithy.GenericAPIError{Code: "AuthorizationError", Fault: smithy.FaultClient}, false},
	} {
		if got := awserr.Retryable(tc.err); got != tc.want {
			t.Errorf("%s: Retryable = %v, want %v", tc.name, got, tc.want)
		}
	}
}
