// Command escalate is the escalate Lambda function: on a schedule it
// reminds the desks of overdue cases and escalates those reminded without
// answer to the EU coordinator. It only wires; the logic is in
// shared/escalate.
package main

import (
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/flagline/flagline/shared/awsenv"
	"github.com/flagline/flagline/shared/escalate"
	"github.com/flagline/flagline/shared/logging"
)

func main() {
	// The region and credentials Lambda sets, without the rest of
	// config.LoadDefaultConfig: see shared/awsenv.
	cfg, err := awsenv.Load()
	if err != nil {
		fmt.Fprintln(os.Stderr, "escalate: aws config:", err)
		os.Exit(1)
	}
	h, err := escalate.FromEnv(cfg, os.LookupEnv, logging.Stdout())
	if err != nil {
		fmt.Fprintln(os.Stderr, "escalate:", err)
		os.Exit(1)
	}
	lambda.Start(h.Handle)
}
