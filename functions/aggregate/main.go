// Command aggregate is the Lambda function that merges reports from the
// table's stream into cases. It only wires; the logic is in shared/aggregate.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/flagline/flagline/shared/aggregate"
	"github.com/flagline/flagline/shared/logging"
)

func main() {
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, "aggregate: aws config:", err)
		os.Exit(1)
	}
	h, err := aggregate.FromEnv(cfg, os.LookupEnv, logging.Stdout())
	if err != nil {
		fmt.Fprintln(os.Stderr, "aggregate:", err)
		os.Exit(1)
	}
	lambda.Start(h.Handle)
}
