// Package motoserver starts and stops moto_server, the local stand-in for
// DynamoDB (with Streams), SNS and SQS that Flagline's integration tests and
// `flagline dev` talk to over the wire.
package motoserver

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/smithy-go/middleware"

	"github.com/flagline/flagline/internal/local/tailbuf"
)

//go:embed server.py
var serverPy string

// Region is the region Flagline's local runs use.
const Region = "eu-west-1"

// Server is a running moto_server.
type Server struct {
	// URL is the endpoint, e.g. http://127.0.0.1:40123.
	URL     string
	cmd     *exec.Cmd
	exited  chan struct{} // closed when the process has exited
	exitErr error
	output  *tailbuf.Buffer
}

// Binary finds moto_server: $FLAGLINE_VENV/bin, then .venv/bin in dir or
// any parent of it, then in the working directory or any parent, then PATH.
func Binary(dir string) (string, error) {
	if venv := os.Getenv("FLAGLINE_VENV"); venv != "" {
		p := filepath.Join(venv, "bin", "moto_server")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	starts := []string{dir}
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	for _, start := range starts {
		abs, err := filepath.Abs(start)
		if err != nil {
			continue
		}
		for d := abs; ; d = filepath.Dir(d) {
			p := filepath.Join(d, ".venv", "bin", "moto_server")
			if _, err := os.Stat(p); err == nil {
				return p, nil
			}
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	if p, err := exec.LookPath("moto_server"); err == nil {
		return p, nil
	}
	return "", errors.New("moto_server not found: run `make venv` (it installs moto into .venv)")
}

// Start runs moto_server on a free loopback port and waits until it answers.
// Its output goes to logw (may be nil).
func Start(ctx context.Context, binary string, logw io.Writer) (*Server, error) {
	return StartOn(ctx, binary, 0, logw)
}

// StartOn is Start on a given loopback port; 0 picks a free one.
func StartOn(ctx context.Context, binary string, port int, logw io.Writer) (*Server, error) {
	if port == 0 {
		p, err := freePort()
		if err != nil {
			return nil, err
		}
		port = p
	}
	// Run moto's application through server.py (DynamoDB requests one at a
	// time, so conditional writes are atomic) with the Python beside the
	// moto_server script, i.e. the venv's.
	python := filepath.Join(filepath.Dir(binary), "python")
	if _, err := os.Stat(python); err != nil {
		python = "python3"
	}
	cmd := exec.Command(python, "-c", serverPy, "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	out := tailbuf.New(4096)
	w := io.Writer(out)
	if logw != nil {
		w = io.MultiWriter(out, logw)
	}
	cmd.Stdout, cmd.Stderr = w, w
	// Own process group, so Stop reaches the server's children as well.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start moto_server: %w", err)
	}
	s := &Server{URL: fmt.Sprintf("http://127.0.0.1:%d", port), cmd: cmd, exited: make(chan struct{}), output: out}
	go func() {
		s.exitErr = cmd.Wait()
		close(s.exited)
	}()
	if err := s.waitReady(ctx, 60*time.Second); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

func (s *Server) waitReady(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		select {
		case <-s.exited:
			return fmt.Errorf("moto_server exited before it was ready (%v):\n%s", s.exitErr, s.output)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		resp, err := http.Get(s.URL + "/moto-api/data.json")
		if err == nil {
			resp.Body.Close()
			return nil
		}
	}
	return fmt.Errorf("moto_server did not answer on %s within %s", s.URL, limit)
}

// Reset drops every resource moto holds, giving the next test a clean slate.
func (s *Server) Reset() error {
	resp, err := http.Post(s.URL+"/moto-api/reset", "application/json", nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// Stop ends the server and its process group and waits for it to exit.
func (s *Server) Stop() {
	if s == nil || s.cmd.Process == nil {
		return
	}
	pgid := s.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-s.exited
	}
}

// Env returns the environment variables that point the AWS SDK at this
// server with dummy credentials.
func (s *Server) Env() map[string]string {
	return map[string]string{
		"AWS_ENDPOINT_URL":      s.URL,
		"AWS_REGION":            Region,
		"AWS_DEFAULT_REGION":    Region,
		"AWS_ACCESS_KEY_ID":     "testing",
		"AWS_SECRET_ACCESS_KEY": "testing",
		"AWS_SESSION_TOKEN":     "testing",
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Main runs a test binary's tests against a moto_server of their own; a
// TestMain exits with what it returns. It starts the server, stores it in
// *srv, runs the tests and stops the server.
func Main(m interface{ Run() int }, srv **Server) int {
	bin, err := Binary(".")
	if err == nil {
		*srv, err = Start(context.Background(), bin, nil)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer (*srv).Stop()
	return m.Run()
}

// Config is an AWS SDK configuration for this server: its endpoint, the
// local region, dummy credentials, one attempt per call (tests see every
// failure, and count every call) and the given API options (call counters,
// injected faults).
//
// Connections are not kept alive: twice a test's single attempt failed
// with "use of closed network connection" while reading an answer on a
// reused loopback connection (moto's werkzeug server closing it), which is
// the transport, not the behaviour under test. The client stays the SDK's
// buildable one, so code that bounds it (intake's store timeout) still can.
func (s *Server) Config(apiOptions ...func(*middleware.Stack) error) aws.Config {
	return aws.Config{
		Region:       Region,
		BaseEndpoint: aws.String(s.URL),
		Credentials:  credentials.NewStaticCredentialsProvider("testing", "testing", ""),
		APIOptions:   apiOptions,
		HTTPClient: awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
			tr.DisableKeepAlives = true
		}),
		RetryMaxAttempts: 1,
	}
}

// ConfigRetryingResets is Config for tests of moto itself, which neither
// inject faults nor count calls: a connection the loopback server reset
// before answering (seen once in CI, on a DescribeStream) is tried again,
// up to 3 attempts, as the SDK's standard retryer would; every answer the
// service gives is still seen on the first attempt.
func (s *Server) ConfigRetryingResets() aws.Config {
	cfg := s.Config()
	cfg.RetryMaxAttempts = 0
	cfg.Retryer = func() aws.Retryer {
		return retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = 3
			o.Retryables = []retry.IsErrorRetryable{retry.RetryableConnectionError{}}
			o.RateLimiter = ratelimit.None
			o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 10 * time.Millisecond, nil })
		})
	}
	return cfg
}
