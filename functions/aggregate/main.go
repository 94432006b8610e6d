// Command aggregate is the Lambda function that merges reports from the
// table's stream into cases. It only wires; the logic is in shared/aggregate.
package main

import (
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/flagline/flagline/shared/aggregate"
	"github.com/flagline/flagline/shared/awsenv"
	"github.com/flagline/flagline/shared/logging"
)

func main() {
	// The region and credentials Lambda sets, without the rest of
	// config.LoadDefaultConfig: see shared/awsenv.
	cfg, err := awsenv.Load()
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
