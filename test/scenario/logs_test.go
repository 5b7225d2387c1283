package scenario

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	cwl "github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	cwltypes "github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/berthdev/berth/internal/berthtest"
)

func logsClient(s *berthtest.Server) *cwl.Client {
	return cwl.NewFromConfig(s.AWSConfig())
}

func putLines(t *testing.T, c *cwl.Client, group, stream string, lines ...string) {
	t.Helper()
	now := time.Now().UnixMilli()
	var evs []cwltypes.InputLogEvent
	for _, l := range lines {
		evs = append(evs, cwltypes.InputLogEvent{Timestamp: aws.Int64(now), Message: aws.String(l)})
	}
	if _, err := c.PutLogEvents(context.Background(), &cwl.PutLogEventsInput{
		LogGroupName: &group, LogStreamName: &stream, LogEvents: evs}); err != nil {
		t.Fatal(err)
	}
}

// TestLogsThroughSDK drives the CloudWatch Logs API with the AWS SDK for Go v2.
func TestLogsThroughSDK(t *testing.T) {
	ctx := context.Background()
	s := berthtest.Start(t, nil)
	c := logsClient(s)
	group := "/ecs/web"
	if _, err := c.CreateLogGroup(ctx, &cwl.CreateLogGroupInput{LogGroupName: &group, Tags: map[string]string{"team": "core"}}); err != nil {
		t.Fatal(err)
	}
	_, err := c.CreateLogGroup(ctx, &cwl.CreateLogGroupInput{LogGroupName: &group})
	var exists *cwltypes.ResourceAlreadyExistsException
	if !errors.As(err, &exists) {
		t.Fatalf("duplicate group: %v", err)
	}
	_, err = c.CreateLogGroup(ctx, &cwl.CreateLogGroupInput{LogGroupName: aws.String("bad name!")})
	var invalid *cwltypes.InvalidParameterException
	if !errors.As(err, &invalid) {
		t.Fatalf("bad name: %v", err)
	}
	if _, err := c.PutRetentionPolicy(ctx, &cwl.PutRetentionPolicyInput{LogGroupName: &group, RetentionInDays: aws.Int32(7)}); err != nil {
		t.Fatal(err)
	}
	dg, err := c.DescribeLogGroups(ctx, &cwl.DescribeLogGroupsInput{LogGroupNamePrefix: aws.String("/ecs/")})
	if err != nil || len(dg.LogGroups) != 1 {
		t.Fatalf("describe groups: %v %v", dg, err)
	}
	lg := dg.LogGroups[0]
	if aws.ToInt32(lg.RetentionInDays) != 7 || aws.ToString(lg.LogGroupArn) != "arn:aws:logs:us-east-1:000000000000:log-group:/ecs/web" || lg.CreationTime == nil {
		t.Fatalf("group: %+v", lg)
	}
	tags, err := c.ListTagsForResource(ctx, &cwl.ListTagsForResourceInput{ResourceArn: lg.LogGroupArn})
	if err != nil || tags.Tags["team"] != "core" {
		t.Fatalf("tags: %v %v", tags, err)
	}

	_, err = c.PutLogEvents(ctx, &cwl.PutLogEventsInput{LogGroupName: &group, LogStreamName: aws.String("nope"),
		LogEvents: []cwltypes.InputLogEvent{{Timestamp: aws.Int64(time.Now().UnixMilli()), Message: aws.String("x")}}})
	var nf *cwltypes.ResourceNotFoundException
	if !errors.As(err, &nf) || !strings.Contains(err.Error(), "The specified log stream does not exist.") {
		t.Fatalf("missing stream: %v", err)
	}
	for _, st := range []string{"web/app/1", "web/app/2"} {
		if _, err := c.CreateLogStream(ctx, &cwl.CreateLogStreamInput{LogGroupName: &group, LogStreamName: aws.String(st)}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 120 {
		putLines(t, c, group, fmt.Sprintf("web/app/%d", i%2+1), fmt.Sprintf(`{"level":"%s","n":%d}`, []string{"info", "error"}[i%2], i))
	}
	// GetLogEvents from the head, page by page, until the token repeats.
	var got int
	var tok *string
	for range 20 {
		out, err := c.GetLogEvents(ctx, &cwl.GetLogEventsInput{LogGroupName: &group, LogStreamName: aws.String("web/app/1"),
			StartFromHead: aws.Bool(true), Limit: aws.Int32(25), NextToken: tok})
		if err != nil {
			t.Fatal(err)
		}
		got += len(out.Events)
		if tok != nil && aws.ToString(out.NextForwardToken) == *tok {
			break
		}
		tok = out.NextForwardToken
	}
	if got != 60 {
		t.Fatalf("GetLogEvents: %d events", got)
	}
	// FilterLogEvents with a JSON pattern, through the SDK's paginator (it
	// stops when nextToken is absent).
	p := cwl.NewFilterLogEventsPaginator(c, &cwl.FilterLogEventsInput{LogGroupName: &group,
		FilterPattern: aws.String(`{ $.level = "error" }`), Limit: aws.Int32(7)})
	got = 0
	for pages := 0; p.HasMorePages(); pages++ {
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range out.Events {
			if !strings.Contains(aws.ToString(e.Message), "error") || aws.ToString(e.LogStreamName) != "web/app/2" {
				t.Fatalf("filtered event: %+v", e)
			}
		}
		got += len(out.Events)
		if pages > 20 {
			t.Fatal("paginator does not end")
		}
	}
	if got != 60 {
		t.Fatalf("FilterLogEvents: %d events", got)
	}
	ds, err := c.DescribeLogStreams(ctx, &cwl.DescribeLogStreamsInput{LogGroupName: &group,
		OrderBy: cwltypes.OrderByLastEventTime, Descending: aws.Bool(true)})
	if err != nil || len(ds.LogStreams) != 2 || ds.LogStreams[0].LastEventTimestamp == nil || ds.LogStreams[0].LastIngestionTime == nil {
		t.Fatalf("describe streams: %+v %v", ds, err)
	}
	if _, err := c.DeleteLogGroup(ctx, &cwl.DeleteLogGroupInput{LogGroupName: &group}); err != nil {
		t.Fatal(err)
	}
	_, err = c.FilterLogEvents(ctx, &cwl.FilterLogEventsInput{LogGroupName: &group})
	if !errors.As(err, &nf) {
		t.Fatalf("deleted group: %v", err)
	}
}

// TestLogsThroughCLIs drives the Logs API with both AWS CLIs.
func TestLogsThroughCLIs(t *testing.T) {
	clis := berthtest.CLIs(t)
	s := berthtest.Start(t, nil)
	berthtest.EachCLI(t, clis, func(t *testing.T, _ int, cli berthtest.CLI) {
		// CLI start-up dominates: run both at once
		run := func(args ...string) map[string]any {
			t.Helper()
			return cli.RunJSON(t, s, args...)
		}
		group := "cli-" + cli.Name
		run("logs", "create-log-group", "--log-group-name", group, "--tags", "env=test")
		run("logs", "create-log-stream", "--log-group-name", group, "--log-stream-name", "s1")
		now := time.Now().UnixMilli()
		events := fmt.Sprintf(`[{"timestamp":%d,"message":"hello world"},{"timestamp":%d,"message":"ERROR disk full"}]`, now, now+1)
		put := run("logs", "put-log-events", "--log-group-name", group, "--log-stream-name", "s1", "--log-events", events)
		if put["nextSequenceToken"] == nil {
			t.Fatalf("put: %v", put)
		}
		ge := run("logs", "get-log-events", "--log-group-name", group, "--log-stream-name", "s1", "--start-from-head")
		if evs := ge["events"].([]any); len(evs) != 2 {
			t.Fatalf("get-log-events: %v", ge)
		}
		fe := run("logs", "filter-log-events", "--log-group-name", group, "--filter-pattern", "ERROR")
		evs := fe["events"].([]any)
		if len(evs) != 1 || evs[0].(map[string]any)["message"] != "ERROR disk full" || fe["nextToken"] != nil {
			t.Fatalf("filter-log-events: %v", fe)
		}
		dg := run("logs", "describe-log-groups", "--log-group-name-prefix", group)
		if gs := dg["logGroups"].([]any); len(gs) != 1 || gs[0].(map[string]any)["storedBytes"].(float64) == 0 {
			t.Fatalf("describe-log-groups: %v", dg)
		}
		lt := run("logs", "list-tags-log-group", "--log-group-name", group)
		if lt["tags"].(map[string]any)["env"] != "test" {
			t.Fatalf("list-tags-log-group: %v", lt)
		}
		_, errOut, code := cli.Run(t, s, "logs", "describe-log-streams", "--log-group-name", "missing-"+group)
		if code == 0 || !strings.Contains(errOut, "ResourceNotFoundException") {
			t.Fatalf("missing group: %d %s", code, errOut)
		}
		_, errOut, code = cli.Run(t, s, "logs", "put-retention-policy", "--log-group-name", group, "--retention-in-days", "2")
		if code == 0 || !strings.Contains(errOut, "InvalidParameterException") {
			t.Fatalf("bad retention: %d %s", code, errOut)
		}
		run("logs", "delete-log-group", "--log-group-name", group)
	})
}

// TestLogsTailFollowAgainstBinary runs `aws logs tail --follow` (CLI v2)
// against the built binary and sees a newly put line arrive.
func TestLogsTailFollowAgainstBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the binary")
	}
	if _, err := os.Stat("/usr/bin/aws"); err != nil {
		t.Skip("AWS CLI v2 not installed")
	}
	p := berthtest.StartProcess(t, "up", t.TempDir(), nil)
	c := logsClient(p.Server)
	ctx := context.Background()
	group := "/ecs/tail"
	if _, err := c.CreateLogGroup(ctx, &cwl.CreateLogGroupInput{LogGroupName: &group}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateLogStream(ctx, &cwl.CreateLogStreamInput{LogGroupName: &group, LogStreamName: aws.String("app")}); err != nil {
		t.Fatal(err)
	}
	putLines(t, c, group, "app", "before the tail")

	dir := t.TempDir()
	cmd := exec.Command("/usr/bin/aws", "logs", "tail", group, "--follow", "--format", "short",
		"--endpoint-url", p.Endpoint, "--region", p.Region)
	cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID="+p.Creds.AccessKeyID, "AWS_SECRET_ACCESS_KEY="+p.Creds.SecretAccessKey,
		"AWS_CONFIG_FILE="+filepath.Join(dir, "config"), "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(dir, "credentials"),
		"AWS_PAGER=", "HOME="+dir)
	out := &berthtest.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := berthtest.StartCommand(cmd); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	waitFor := func(s string, within time.Duration) {
		t.Helper()
		deadline := time.Now().Add(within)
		for !strings.Contains(out.String(), s) {
			if time.Now().After(deadline) {
				t.Fatalf("aws logs tail did not show %q within %s; output:\n%s", s, within, out.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitFor("before the tail", 30*time.Second)
	putLines(t, c, group, "app", "a new line")
	start := time.Now()
	// The CLI polls every 5 s once a response has no nextToken.
	waitFor("a new line", 12*time.Second)
	t.Logf("tail showed the new line after %s", time.Since(start).Round(100*time.Millisecond))
	if n := strings.Count(out.String(), "before the tail"); n != 1 {
		t.Fatalf("tail repeated a line (%d times):\n%s", n, out.String())
	}
}

// TestLogsSurviveKill9 kills the real binary with SIGKILL while writers
// are putting events, restarts it, and finds every acknowledged event.
func TestLogsSurviveKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the binary")
	}
	dir := t.TempDir()
	addr := berthtest.FreeAddr(t)
	p := berthtest.StartProcessAt(t, addr, "up", dir, nil)
	c := logsClient(p.Server)
	ctx := context.Background()
	group := "/durable"
	if _, err := c.CreateLogGroup(ctx, &cwl.CreateLogGroupInput{LogGroupName: &group}); err != nil {
		t.Fatal(err)
	}
	const writers = 4
	acked := make([][]string, writers)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range writers {
		stream := fmt.Sprint("s", w)
		if _, err := c.CreateLogStream(ctx, &cwl.CreateLogStreamInput{LogGroupName: &group, LogStreamName: &stream}); err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			// No retries: an error means not acknowledged.
			cw := cwl.NewFromConfig(p.Server.AWSConfig(), func(o *cwl.Options) { o.RetryMaxAttempts = 1 })
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				var evs []cwltypes.InputLogEvent
				var lines []string
				for j := range 10 {
					l := fmt.Sprintf("w%d batch %d line %d", w, i, j)
					lines = append(lines, l)
					evs = append(evs, cwltypes.InputLogEvent{Timestamp: aws.Int64(time.Now().UnixMilli()), Message: aws.String(l)})
				}
				if _, err := cw.PutLogEvents(ctx, &cwl.PutLogEventsInput{LogGroupName: &group, LogStreamName: &stream, LogEvents: evs}); err != nil {
					return // the server is gone
				}
				acked[w] = append(acked[w], lines...)
			}
		}()
	}
	time.Sleep(1500 * time.Millisecond)
	p.Kill9()
	close(stop)
	wg.Wait()

	p2 := berthtest.StartProcessAt(t, addr, "up", dir, nil)
	c2 := logsClient(p2.Server)
	stored := map[string]bool{}
	pg := cwl.NewFilterLogEventsPaginator(c2, &cwl.FilterLogEventsInput{LogGroupName: &group})
	for pg.HasMorePages() {
		out, err := pg.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range out.Events {
			stored[aws.ToString(e.Message)] = true
		}
	}
	total := 0
	for w := range writers {
		total += len(acked[w])
		for _, l := range acked[w] {
			if !stored[l] {
				t.Fatalf("acknowledged event lost by kill -9: %q", l)
			}
		}
	}
	if total == 0 {
		t.Fatal("no batch was acknowledged before the kill")
	}
	t.Logf("%d acknowledged events, %d stored after kill -9", total, len(stored))
}

// noHostPrefix stops the SDK from prefixing the endpoint's host
// ("stream-127.0.0.1"), as AWS_DISABLE_HOST_PREFIX_INJECTION does for
// botocore.
func noHostPrefix(o *cwl.Options) {
	o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
		return st.Initialize.Add(middleware.InitializeMiddlewareFunc("BerthNoHostPrefix",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				return next.HandleInitialize(smithyhttp.DisableEndpointHostPrefix(ctx, true), in)
			}), middleware.Before)
	})
}

// TestLogsLiveTailThroughSDK opens a Live Tail session with the Go SDK's
// event-stream client and sees new events arrive, filtered.
func TestLogsLiveTailThroughSDK(t *testing.T) {
	ctx := context.Background()
	s := berthtest.Start(t, nil)
	c := logsClient(s)
	group := "/live"
	if _, err := c.CreateLogGroup(ctx, &cwl.CreateLogGroupInput{LogGroupName: &group}); err != nil {
		t.Fatal(err)
	}
	for _, st := range []string{"web", "db"} {
		if _, err := c.CreateLogStream(ctx, &cwl.CreateLogStreamInput{LogGroupName: &group, LogStreamName: aws.String(st)}); err != nil {
			t.Fatal(err)
		}
	}
	putLines(t, c, group, "web", "ERROR before the session")

	_, err := c.StartLiveTail(ctx, &cwl.StartLiveTailInput{LogGroupIdentifiers: []string{"/missing"}}, noHostPrefix)
	var nf *cwltypes.ResourceNotFoundException
	if !errors.As(err, &nf) {
		t.Fatalf("missing group: %v", err)
	}
	arn := "arn:aws:logs:us-east-1:000000000000:log-group:/live"
	out, err := c.StartLiveTail(ctx, &cwl.StartLiveTailInput{LogGroupIdentifiers: []string{arn},
		LogStreamNamePrefixes: []string{"we"}, LogEventFilterPattern: aws.String("ERROR")}, noHostPrefix)
	if err != nil {
		t.Fatal(err)
	}
	stream := out.GetStream()
	defer stream.Close()
	next := func() cwltypes.StartLiveTailResponseStream {
		t.Helper()
		select {
		case ev, ok := <-stream.Events():
			if !ok {
				t.Fatalf("stream ended: %v", stream.Err())
			}
			return ev
		case <-time.After(10 * time.Second):
			t.Fatal("no event within 10 s")
		}
		return nil
	}
	first, ok := next().(*cwltypes.StartLiveTailResponseStreamMemberSessionStart)
	if !ok || aws.ToString(first.Value.SessionId) == "" || first.Value.LogGroupIdentifiers[0] != arn {
		t.Fatalf("first event: %#v", first)
	}
	putLines(t, c, group, "db", "ERROR in another stream")
	putLines(t, c, group, "web", "INFO not matching", "ERROR during the session")
	deadline := time.Now().Add(10 * time.Second)
	var got []string
	for len(got) == 0 && time.Now().Before(deadline) {
		up, ok := next().(*cwltypes.StartLiveTailResponseStreamMemberSessionUpdate)
		if !ok {
			t.Fatalf("expected a session update")
		}
		for _, e := range up.Value.SessionResults {
			got = append(got, aws.ToString(e.Message))
			if aws.ToString(e.LogGroupIdentifier) != arn || aws.ToString(e.LogStreamName) != "web" {
				t.Fatalf("event: %+v", e)
			}
		}
	}
	if fmt.Sprint(got) != "[ERROR during the session]" {
		t.Fatalf("live tail: %v", got)
	}
}

// TestLogsLiveTailEndsOnShutdown checks that an open Live Tail session
// does not hold up the server's shutdown.
func TestLogsLiveTailEndsOnShutdown(t *testing.T) {
	ctx := context.Background()
	s := berthtest.Start(t, nil)
	c := logsClient(s)
	if _, err := c.CreateLogGroup(ctx, &cwl.CreateLogGroupInput{LogGroupName: aws.String("g")}); err != nil {
		t.Fatal(err)
	}
	out, err := c.StartLiveTail(ctx, &cwl.StartLiveTailInput{LogGroupIdentifiers: []string{"g"}}, noHostPrefix)
	if err != nil {
		t.Fatal(err)
	}
	stream := out.GetStream()
	defer stream.Close()
	<-stream.Events() // sessionStart
	start := time.Now()
	s.Daemon.Close()
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("shutdown took %s with a live tail open", d)
	}
	for range stream.Events() {
	}
}

// liveTailPy is a boto3 Live Tail client: it opens a session, puts a line
// once the session has started and prints the first event it gets back.
const liveTailPy = `
import boto3, sys, time, threading
ep, ak, sk, group = sys.argv[1:5]
c = boto3.client("logs", endpoint_url=ep, region_name="us-east-1", aws_access_key_id=ak, aws_secret_access_key=sk)
r = c.start_live_tail(logGroupIdentifiers=[group])
def put():
    time.sleep(1)
    c.put_log_events(logGroupName=group, logStreamName="s", logEvents=[{"timestamp": int(time.time()*1000), "message": "hello from boto3"}])
n = 0
for ev in r["responseStream"]:
    n += 1
    if "sessionStart" in ev:
        threading.Thread(target=put).start()
    if "sessionUpdate" in ev and ev["sessionUpdate"]["sessionResults"]:
        print("GOT", ev["sessionUpdate"]["sessionResults"][0]["message"])
        break
    if n > 15:
        break
`

// TestLogsLiveTailBoto3AgainstBinary runs a boto3 Live Tail session against
// the built binary, with AWS_DISABLE_HOST_PREFIX_INJECTION=true (without
// it botocore calls http://stream-127.0.0.1:PORT).
func TestLogsLiveTailBoto3AgainstBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the binary")
	}
	if err := exec.Command("python3", "-c", "import boto3").Run(); err != nil {
		t.Skip("boto3 not installed")
	}
	p := berthtest.StartProcess(t, "up", t.TempDir(), nil)
	c := logsClient(p.Server)
	ctx := context.Background()
	if _, err := c.CreateLogGroup(ctx, &cwl.CreateLogGroupInput{LogGroupName: aws.String("py")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateLogStream(ctx, &cwl.CreateLogStreamInput{LogGroupName: aws.String("py"), LogStreamName: aws.String("s")}); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("python3", "-c", liveTailPy, p.Endpoint, p.Creds.AccessKeyID, p.Creds.SecretAccessKey, "py")
	cmd.Env = append(os.Environ(), "AWS_DISABLE_HOST_PREFIX_INJECTION=true", "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
	done := make(chan struct{})
	var out []byte
	var err error
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("boto3 live tail did not finish: %s", out)
	}
	if err != nil || !strings.Contains(string(out), "GOT hello from boto3") {
		t.Fatalf("boto3 live tail: %v\n%s", err, out)
	}
}
