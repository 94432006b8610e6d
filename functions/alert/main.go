// Command alert is the alert Lambda function: it reads case items from the
// table's stream and publishes each case's alerts to the alerts topic. It
// only wires; the logic is in shared/alert.
package main

import (
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/flagline/flagline/shared/alert"
	"github.com/flagline/flagline/shared/awsenv"
	"github.com/flagline/flagline/shared/logging"
)

func main() {
	// The region and credentials Lambda sets, without the rest of
	// config.LoadDefaultConfig: see shared/awsenv.
	cfg, err := awsenv.Load()
	if err != nil {
		fmt.Fprintln(os.Stderr, "alert: aws config:", err)
		os.Exit(1)
	}
	h, err := alert.FromEnv(cfg, os.LookupEnv, logging.Stdout())
	if err != nil {
		fmt.Fprintln(os.Stderr, "alert:", err)
		os.Exit(1)
	}
	lambda.Start(h.Invoke)
}
