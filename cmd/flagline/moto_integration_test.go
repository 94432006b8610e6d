//go:build integration

package main

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/flagline/flagline/internal/local/motoserver"
	"github.com/flagline/flagline/internal/local/samtemplate"
)

// startMoto starts a moto_server of the test's own (no TestMain, so the
// commands' integration tests cannot clash) and points the standard AWS
// configuration chain at it through AWS_ENDPOINT_URL and dummy
// credentials, with nothing from the host's own AWS configuration: the
// commands then find it as an operator's shell would find AWS.
func startMoto(t *testing.T) *motoserver.Server {
	t.Helper()
	bin, err := motoserver.Binary(".")
	if err != nil {
		t.Fatal(err)
	}
	moto, err := motoserver.Start(context.Background(), bin, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(moto.Stop)
	for name, value := range moto.Env() {
		t.Setenv(name, value)
	}
	dir := t.TempDir()
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "none"))
	t.Setenv("AWS_PROFILE", "")
	return moto
}

// createTable creates the table template.yaml describes, named name, and
// returns its stream's ARN.
func createTable(t *testing.T, db *dynamodb.Client, name string) string {
	t.Helper()
	tpl, err := samtemplate.Load(filepath.Join("..", "..", "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	spec, err := tpl.Table("Table")
	if err != nil {
		t.Fatal(err)
	}
	streamARN, err := spec.Create(context.Background(), db, name)
	if err != nil {
		t.Fatal(err)
	}
	return streamARN
}
