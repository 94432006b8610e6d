// Package awserr sorts errors from AWS calls into retryable (throttling,
// server faults, timeouts: try again later) and permanent (the request itself
// is wrong: trying again cannot help).
package awserr

import (
	"context"
	"errors"
	"net"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
)

// throttling lists error codes AWS services use for "slow down".
var throttling = map[string]bool{
	"ThrottlingException":                    true,
	"Throttling":                             true,
	"ThrottledException":                     true,
	"RequestThrottledException":              true,
	"TooManyRequestsException":               true,
	"ProvisionedThroughputExceededException": true,
	"TransactionInProgressException":         true,
	"RequestLimitExceeded":                   true,
	"LimitExceededException":                 true,
	"RequestThrottled":                       true,
	"SlowDown":                               true,
	"KMSThrottlingException":                 true,
	"Throttled":                              true, // SNS
	"KMSThrottling":                          true, // SNS, encrypted topics
	"InternalServerError":                    true,
	"InternalError":                          true,
	"InternalFailure":                        true,
	"ServiceUnavailable":                     true,
	"ServiceUnavailableException":            true,
	"KMSInternalException":                   true,
}

// Retryable reports whether err is worth retrying later.
func Retryable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return true
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		if throttling[apiErr.ErrorCode()] || apiErr.ErrorFault() == smithy.FaultServer {
			return true
		}
	}
	var respErr *awshttp.ResponseError
	if errors.As(err, &respErr) && respErr.HTTPStatusCode() >= 500 {
		return true
	}
	var opErr *smithy.OperationError
	if errors.As(err, &opErr) && apiErr == nil && respErr == nil {
		// No answer from the service at all (connection refused, reset, DNS):
		// the request may not have arrived; trying again is safe for
		// idempotent callers and all of Flagline's writes are conditional.
		return !errors.Is(err, context.Canceled)
	}
	return false
}
