// Command cases is the cases Lambda function: the case API (list, read, act
// with a bearer token) and the pages that the signed links of alert emails
// open. It only wires; the logic is in shared/casesapi.
package main

import (
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/flagline/flagline/shared/awsenv"
	"github.com/flagline/flagline/shared/casesapi"
	"github.com/flagline/flagline/shared/logging"
)

func main() {
	// The region and credentials Lambda sets, without the rest of
	// config.LoadDefaultConfig: see shared/awsenv.
	cfg, err := awsenv.Load()
	if err != nil {
		fmt.Fprintln(os.Stderr, "cases: aws config:", err)
		os.Exit(1)
	}
	h, err := casesapi.FromEnv(cfg, os.LookupEnv, logging.Stdout())
	if err != nil {
		fmt.Fprintln(os.Stderr, "cases:", err)
		os.Exit(1)
	}
	lambda.Start(h.Handle)
}
