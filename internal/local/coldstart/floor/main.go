// Command floor is the least a Flagline function could be: a hello-world
// handler, the SDK's default config and one DynamoDB client, built as the
// functions are. The cold-init benchmark (internal/local/coldstart) and the
// size report measure each function against it.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

type handler struct{ db *dynamodb.Client }

func (h *handler) Handle(context.Context, struct{}) (string, error) {
	if h.db == nil {
		return "", fmt.Errorf("no client")
	}
	return "hello", nil
}

func main() {
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, "floor: aws config:", err)
		os.Exit(1)
	}
	h := &handler{db: dynamodb.NewFromConfig(cfg)}
	lambda.Start(h.Handle)
}
