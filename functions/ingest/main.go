// Command ingest is the report intake Lambda function behind
// POST /v1/sources/{source}/reports. It only wires; the logic is in
// shared/intake.
package main

import (
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/flagline/flagline/shared/awsenv"
	"github.com/flagline/flagline/shared/intake"
	"github.com/flagline/flagline/shared/logging"
)

func main() {
	// The region and credentials Lambda sets, without the rest of
	// config.LoadDefaultConfig: see shared/awsenv.
	cfg, err := awsenv.Load()
	if err != nil {
		fmt.Fprintln(os.Stderr, "ingest: aws config:", err)
		os.Exit(1)
	}
	h, err := intake.FromEnv(cfg, os.LookupEnv, logging.Stdout())
	if err != nil {
		fmt.Fprintln(os.Stderr, "ingest:", err)
		os.Exit(1)
	}
	lambda.Start(h.Handle)
}
