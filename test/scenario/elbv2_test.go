package scenario

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	"github.com/aws/smithy-go"

	"github.com/berthdev/berth/internal/berthtest"
	"github.com/berthdev/berth/internal/daemon"
)

// elbCode is the AWS error code of err ("" when none).
func elbCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// loopbackBackend is an HTTP target on 127.0.0.1 that names itself.
func loopbackBackend(t *testing.T, name string) (host string, port int32) {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s", name, r.URL.Path)
	}))
	t.Cleanup(srv.Close)
	h, p, _ := net.SplitHostPort(srv.Listener.Addr().String())
	n, _ := strconv.Atoi(p)
	return h, int32(n)
}

func freePort(t *testing.T) int32 {
	_, p, _ := net.SplitHostPort(berthtest.FreeAddr(t))
	n, _ := strconv.Atoi(p)
	return int32(n)
}

// getThrough GETs a path through a listener on 127.0.0.1, with the load
// balancer's DNS name as Host, until it answers want's status (or fails
// after 20 s).
func getThrough(t *testing.T, port int32, host, path string, want int) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		req, _ := http.NewRequest("GET", fmt.Sprintf("http://127.0.0.1:%d%s", port, path), nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == want {
				return string(b)
			}
			err = fmt.Errorf("status %d: %s", resp.StatusCode, b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s through port %d: %v", path, port, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestELBv2GoSDK drives the ALB flow through the AWS SDK for Go v2: a
// load balancer, an ip target group with a loopback target, a listener
// with a rule, traffic through it, the waiters, and AWS's errors.
func TestELBv2GoSDK(t *testing.T) {
	t.Parallel()
	s := berthtest.Start(t, func(c *daemon.Config) { c.MetricsPeriod = time.Second })
	c := elb.NewFromConfig(s.AWSConfig())
	ctx := context.Background()

	lbOut, err := c.CreateLoadBalancer(ctx, &elb.CreateLoadBalancerInput{Name: aws.String("web"), Subnets: []string{"subnet-a", "subnet-b"},
		Tags: []types.Tag{{Key: aws.String("env"), Value: aws.String("test")}}})
	if err != nil {
		t.Fatal(err)
	}
	lb := lbOut.LoadBalancers[0]
	if !strings.Contains(*lb.LoadBalancerArn, ":loadbalancer/app/web/") || !strings.HasPrefix(*lb.DNSName, "web-") ||
		!strings.HasSuffix(*lb.DNSName, ".us-east-1.elb.localhost") || lb.Type != types.LoadBalancerTypeEnumApplication {
		t.Fatalf("load balancer: %+v", lb)
	}
	if err := elb.NewLoadBalancerAvailableWaiter(c, func(o *elb.LoadBalancerAvailableWaiterOptions) { o.MinDelay = 100 * time.Millisecond }).
		Wait(ctx, &elb.DescribeLoadBalancersInput{LoadBalancerArns: []string{*lb.LoadBalancerArn}}, 20*time.Second); err != nil {
		t.Fatalf("load-balancer-available: %v", err)
	}
	// Same name, same settings: the same load balancer; other settings: an error.
	again, err := c.CreateLoadBalancer(ctx, &elb.CreateLoadBalancerInput{Name: aws.String("web")})
	if err != nil || *again.LoadBalancers[0].LoadBalancerArn != *lb.LoadBalancerArn {
		t.Fatalf("idempotent create: %v", err)
	}
	_, err = c.CreateLoadBalancer(ctx, &elb.CreateLoadBalancerInput{Name: aws.String("web"), Scheme: types.LoadBalancerSchemeEnumInternal})
	if elbCode(err) != "DuplicateLoadBalancerName" {
		t.Fatalf("duplicate name: %v", err)
	}
	_, err = c.DescribeLoadBalancers(ctx, &elb.DescribeLoadBalancersInput{Names: []string{"nope"}})
	var nf *types.LoadBalancerNotFoundException
	if !errors.As(err, &nf) {
		t.Fatalf("missing load balancer: %v", err)
	}

	host, port := loopbackBackend(t, "blue")
	tgOut, err := c.CreateTargetGroup(ctx, &elb.CreateTargetGroupInput{Name: aws.String("blue"), Protocol: types.ProtocolEnumHttp, Port: aws.Int32(port),
		TargetType: types.TargetTypeEnumIp, VpcId: aws.String("vpc-1"), HealthCheckIntervalSeconds: aws.Int32(5), HealthCheckTimeoutSeconds: aws.Int32(2),
		HealthyThresholdCount: aws.Int32(2), HealthCheckPath: aws.String("/health"), Matcher: &types.Matcher{HttpCode: aws.String("200-299")}})
	if err != nil {
		t.Fatal(err)
	}
	tg := tgOut.TargetGroups[0]
	if *tg.UnhealthyThresholdCount != 2 || *tg.HealthCheckPort != "traffic-port" || tg.HealthCheckProtocol != types.ProtocolEnumHttp {
		t.Fatalf("target group defaults: %+v", tg)
	}
	if _, err := c.ModifyTargetGroupAttributes(ctx, &elb.ModifyTargetGroupAttributesInput{TargetGroupArn: tg.TargetGroupArn,
		Attributes: []types.TargetGroupAttribute{{Key: aws.String("deregistration_delay.timeout_seconds"), Value: aws.String("0")}}}); err != nil {
		t.Fatal(err)
	}
	_, err = c.ModifyTargetGroupAttributes(ctx, &elb.ModifyTargetGroupAttributesInput{TargetGroupArn: tg.TargetGroupArn,
		Attributes: []types.TargetGroupAttribute{{Key: aws.String("deregistration_delay.timeout_seconds"), Value: aws.String("9999")}}})
	if elbCode(err) != "ValidationError" {
		t.Fatalf("bad attribute: %v", err)
	}
	target := []types.TargetDescription{{Id: aws.String(host), Port: aws.Int32(port)}}
	if _, err := c.RegisterTargets(ctx, &elb.RegisterTargetsInput{TargetGroupArn: tg.TargetGroupArn, Targets: target}); err != nil {
		t.Fatal(err)
	}
	th, err := c.DescribeTargetHealth(ctx, &elb.DescribeTargetHealthInput{TargetGroupArn: tg.TargetGroupArn})
	if err != nil || len(th.TargetHealthDescriptions) != 1 || th.TargetHealthDescriptions[0].TargetHealth.Reason != types.TargetHealthReasonEnumNotInUse {
		t.Fatalf("health before a listener: %+v %v", th, err)
	}

	lport := freePort(t)
	lisOut, err := c.CreateListener(ctx, &elb.CreateListenerInput{LoadBalancerArn: lb.LoadBalancerArn, Port: aws.Int32(lport), Protocol: types.ProtocolEnumHttp,
		DefaultActions: []types.Action{{Type: types.ActionTypeEnumForward, TargetGroupArn: tg.TargetGroupArn}}})
	if err != nil {
		t.Fatal(err)
	}
	lis := lisOut.Listeners[0]
	_, err = c.CreateListener(ctx, &elb.CreateListenerInput{LoadBalancerArn: lb.LoadBalancerArn, Port: aws.Int32(lport), Protocol: types.ProtocolEnumHttp,
		DefaultActions: []types.Action{{Type: types.ActionTypeEnumForward, TargetGroupArn: tg.TargetGroupArn}}})
	if elbCode(err) != "DuplicateListener" {
		t.Fatalf("duplicate listener: %v", err)
	}
	_, err = c.CreateListener(ctx, &elb.CreateListenerInput{LoadBalancerArn: lb.LoadBalancerArn, Port: aws.Int32(freePort(t)), Protocol: types.ProtocolEnumHttp,
		DefaultActions: []types.Action{{Type: types.ActionTypeEnumForward, TargetGroupArn: aws.String(strings.Replace(*tg.TargetGroupArn, "/blue/", "/gone/", 1))}}})
	if elbCode(err) != "TargetGroupNotFound" {
		t.Fatalf("missing target group: %v", err)
	}
	ruleOut, err := c.CreateRule(ctx, &elb.CreateRuleInput{ListenerArn: lis.ListenerArn, Priority: aws.Int32(10),
		Conditions: []types.RuleCondition{{Field: aws.String("path-pattern"), Values: []string{"/static/*"}}},
		Actions: []types.Action{{Type: types.ActionTypeEnumFixedResponse, FixedResponseConfig: &types.FixedResponseActionConfig{
			StatusCode: aws.String("200"), ContentType: aws.String("text/plain"), MessageBody: aws.String("static")}}}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.CreateRule(ctx, &elb.CreateRuleInput{ListenerArn: lis.ListenerArn, Priority: aws.Int32(10),
		Conditions: []types.RuleCondition{{Field: aws.String("host-header"), Values: []string{"x.example"}}},
		Actions:    []types.Action{{Type: types.ActionTypeEnumForward, TargetGroupArn: tg.TargetGroupArn}}})
	if elbCode(err) != "PriorityInUse" {
		t.Fatalf("priority in use: %v", err)
	}
	rules, err := c.DescribeRules(ctx, &elb.DescribeRulesInput{ListenerArn: lis.ListenerArn})
	if err != nil || len(rules.Rules) != 2 || *rules.Rules[0].Priority != "10" || *rules.Rules[1].Priority != "default" || !*rules.Rules[1].IsDefault {
		t.Fatalf("rules: %+v %v", rules, err)
	}
	if _, err := c.SetRulePriorities(ctx, &elb.SetRulePrioritiesInput{RulePriorities: []types.RulePriorityPair{{RuleArn: ruleOut.Rules[0].RuleArn, Priority: aws.Int32(5)}}}); err != nil {
		t.Fatal(err)
	}
	_, err = c.DeleteTargetGroup(ctx, &elb.DeleteTargetGroupInput{TargetGroupArn: tg.TargetGroupArn})
	if elbCode(err) != "ResourceInUse" {
		t.Fatalf("delete a used target group: %v", err)
	}
	desc, err := c.DescribeTargetGroups(ctx, &elb.DescribeTargetGroupsInput{LoadBalancerArn: lb.LoadBalancerArn})
	if err != nil || len(desc.TargetGroups) != 1 || desc.TargetGroups[0].LoadBalancerArns[0] != *lb.LoadBalancerArn {
		t.Fatalf("target groups of the load balancer: %+v %v", desc, err)
	}

	// Traffic: the rule answers /static/*, the rest reaches the target once healthy.
	if err := elb.NewTargetInServiceWaiter(c, func(o *elb.TargetInServiceWaiterOptions) { o.MinDelay, o.MaxDelay = 200*time.Millisecond, time.Second }).
		Wait(ctx, &elb.DescribeTargetHealthInput{TargetGroupArn: tg.TargetGroupArn}, 30*time.Second); err != nil {
		t.Fatalf("target-in-service: %v", err)
	}
	if body := getThrough(t, lport, *lb.DNSName, "/app", 200); body != "blue /app" {
		t.Fatalf("through the listener: %q", body)
	}
	if body := getThrough(t, lport, *lb.DNSName, "/static/x.css", 200); body != "static" {
		t.Fatalf("fixed response: %q", body)
	}

	// The requests show in AWS/ApplicationELB: 2 by the load balancer, 1
	// forwarded to the target group.
	lbDim := (*lb.LoadBalancerArn)[strings.Index(*lb.LoadBalancerArn, ":loadbalancer/")+len(":loadbalancer/"):]
	cw := cloudwatch.NewFromConfig(s.AWSConfig())
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, err := cw.GetMetricStatistics(ctx, &cloudwatch.GetMetricStatisticsInput{Namespace: aws.String("AWS/ApplicationELB"), MetricName: aws.String("RequestCount"),
			Dimensions: []cwtypes.Dimension{{Name: aws.String("LoadBalancer"), Value: aws.String(lbDim)}},
			StartTime:  aws.Time(time.Now().Add(-10 * time.Minute)), EndTime: aws.Time(time.Now().Add(time.Minute)), Period: aws.Int32(3600),
			Statistics: []cwtypes.Statistic{cwtypes.StatisticSum}})
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Datapoints) == 1 && *st.Datapoints[0].Sum >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("RequestCount of %s: %+v", lbDim, st.Datapoints)
		}
		time.Sleep(200 * time.Millisecond)
	}

	if _, err := c.DeregisterTargets(ctx, &elb.DeregisterTargetsInput{TargetGroupArn: tg.TargetGroupArn, Targets: target}); err != nil {
		t.Fatal(err)
	}
	if err := elb.NewTargetDeregisteredWaiter(c, func(o *elb.TargetDeregisteredWaiterOptions) {
		o.MinDelay, o.MaxDelay = 200*time.Millisecond, time.Second
	}).
		Wait(ctx, &elb.DescribeTargetHealthInput{TargetGroupArn: tg.TargetGroupArn, Targets: target}, 30*time.Second); err != nil {
		t.Fatalf("target-deregistered: %v", err)
	}
	tags, err := c.DescribeTags(ctx, &elb.DescribeTagsInput{ResourceArns: []string{*lb.LoadBalancerArn}})
	if err != nil || len(tags.TagDescriptions[0].Tags) != 1 || *tags.TagDescriptions[0].Tags[0].Key != "env" {
		t.Fatalf("tags: %+v %v", tags, err)
	}
	if _, err := c.DeleteLoadBalancer(ctx, &elb.DeleteLoadBalancerInput{LoadBalancerArn: lb.LoadBalancerArn}); err != nil {
		t.Fatal(err)
	}
	// Deleting again succeeds, as on AWS; the listener went with it.
	if _, err := c.DeleteLoadBalancer(ctx, &elb.DeleteLoadBalancerInput{LoadBalancerArn: lb.LoadBalancerArn}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DescribeListeners(ctx, &elb.DescribeListenersInput{ListenerArns: []string{*lis.ListenerArn}}); elbCode(err) != "ListenerNotFound" {
		t.Fatalf("listener after its load balancer: %v", err)
	}
	if _, err := c.DeleteTargetGroup(ctx, &elb.DeleteTargetGroupInput{TargetGroupArn: tg.TargetGroupArn}); err != nil {
		t.Fatal(err)
	}
}
