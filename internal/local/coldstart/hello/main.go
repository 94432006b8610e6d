// Command hello is a hello-world Lambda function with no AWS SDK: the
// size report's lower bound for what the Go runtime and aws-lambda-go
// weigh by themselves.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"
)

func main() {
	lambda.Start(func(context.Context, struct{}) (string, error) { return "hello", nil })
}
