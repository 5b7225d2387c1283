package scenario

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	aas "github.com/aws/aws-sdk-go-v2/service/applicationautoscaling"
	aastypes "github.com/aws/aws-sdk-go-v2/service/applicationautoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	sd "github.com/aws/aws-sdk-go-v2/service/servicediscovery"
	sdtypes "github.com/aws/aws-sdk-go-v2/service/servicediscovery/types"
	"github.com/chromedp/chromedp"

	"github.com/berthdev/berth/internal/berthtest"
)

// consoleFixture is what consoleSetup made through the SDKs for the
// console's further views.
type consoleFixture struct {
	lbPort int32
	lbHost string
	nsID   string
}

// consoleSetup creates, through the Go SDK, what the console's load
// balancer, Cloud Map, CloudWatch and EventBridge views show: a load
// balancer with a listener, two rules and a target group with one healthy
// and one unreachable target; an HTTP namespace with two services and
// instances; a metric and an alarm on it; Service Connect metrics (in a
// namespace of the test's, as PutMetricData refuses AWS/ ones); an
// EventBridge rule with a target and an event. It runs early so that health checks, alarm
// evaluation and metric publication happen while the browser does other
// things.
func consoleSetup(t *testing.T, cx context.Context, p *berthtest.Process) consoleFixture {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	cfg := p.AWSConfig()
	// The target: 500 on /boom, 200 elsewhere.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/boom" {
			w.WriteHeader(http.StatusInternalServerError)
		}
		fmt.Fprint(w, "ok")
	}))
	t.Cleanup(srv.Close)
	host, ps, _ := net.SplitHostPort(srv.Listener.Addr().String())
	port, _ := strconv.Atoi(ps)
	lb := elb.NewFromConfig(cfg)
	lbo, err := lb.CreateLoadBalancer(cx, &elb.CreateLoadBalancerInput{Name: aws.String("shop"), Subnets: []string{"subnet-a", "subnet-b"}})
	must(err)
	tg, err := lb.CreateTargetGroup(cx, &elb.CreateTargetGroupInput{Name: aws.String("shop-api"), Protocol: elbtypes.ProtocolEnumHttp, Port: aws.Int32(int32(port)),
		TargetType: elbtypes.TargetTypeEnumIp, VpcId: aws.String("vpc-1"), HealthCheckIntervalSeconds: aws.Int32(5), HealthCheckTimeoutSeconds: aws.Int32(2),
		HealthyThresholdCount: aws.Int32(2), UnhealthyThresholdCount: aws.Int32(2), HealthCheckPath: aws.String("/health")})
	must(err)
	tgARN := tg.TargetGroups[0].TargetGroupArn
	_, err = lb.RegisterTargets(cx, &elb.RegisterTargetsInput{TargetGroupArn: tgARN, Targets: []elbtypes.TargetDescription{
		{Id: aws.String(host), Port: aws.Int32(int32(port))}, {Id: aws.String("127.0.0.1"), Port: aws.Int32(freePort(t))}}})
	must(err)
	lport := freePort(t)
	lis, err := lb.CreateListener(cx, &elb.CreateListenerInput{LoadBalancerArn: lbo.LoadBalancers[0].LoadBalancerArn, Port: aws.Int32(lport), Protocol: elbtypes.ProtocolEnumHttp,
		DefaultActions: []elbtypes.Action{{Type: elbtypes.ActionTypeEnumForward, TargetGroupArn: tgARN}}})
	must(err)
	_, err = lb.CreateRule(cx, &elb.CreateRuleInput{ListenerArn: lis.Listeners[0].ListenerArn, Priority: aws.Int32(10),
		Conditions: []elbtypes.RuleCondition{{Field: aws.String("path-pattern"), Values: []string{"/static/*"}}},
		Actions: []elbtypes.Action{{Type: elbtypes.ActionTypeEnumFixedResponse, FixedResponseConfig: &elbtypes.FixedResponseActionConfig{
			StatusCode: aws.String("200"), ContentType: aws.String("text/plain"), MessageBody: aws.String("static")}}}})
	must(err)
	_, err = lb.CreateRule(cx, &elb.CreateRuleInput{ListenerArn: lis.Listeners[0].ListenerArn, Priority: aws.Int32(5),
		Conditions: []elbtypes.RuleCondition{{Field: aws.String("host-header"), Values: []string{"api.example"}}},
		Actions:    []elbtypes.Action{{Type: elbtypes.ActionTypeEnumForward, TargetGroupArn: tgARN}}})
	must(err)

	sdc := sd.NewFromConfig(cfg)
	nso, err := sdc.CreateHttpNamespace(cx, &sd.CreateHttpNamespaceInput{Name: aws.String("shop")})
	must(err)
	nsID := waitOp(t, sdc, nso.OperationId).Targets["NAMESPACE"]
	api, err := sdc.CreateService(cx, &sd.CreateServiceInput{Name: aws.String("api"), NamespaceId: &nsID, HealthCheckCustomConfig: &sdtypes.HealthCheckCustomConfig{}})
	must(err)
	db, err := sdc.CreateService(cx, &sd.CreateServiceInput{Name: aws.String("db"), NamespaceId: &nsID})
	must(err)
	for i, s := range []*string{api.Service.Id, api.Service.Id, db.Service.Id} {
		_, err := sdc.RegisterInstance(cx, &sd.RegisterInstanceInput{ServiceId: s, InstanceId: aws.String(fmt.Sprintf("i-%d", i)),
			Attributes: map[string]string{"AWS_INSTANCE_IPV4": fmt.Sprintf("10.0.0.%d", i+1), "AWS_INSTANCE_PORT": "8080"}})
		must(err)
	}
	_, err = sdc.UpdateInstanceCustomHealthStatus(cx, &sd.UpdateInstanceCustomHealthStatusInput{ServiceId: api.Service.Id, InstanceId: aws.String("i-1"), Status: sdtypes.CustomHealthStatusUnhealthy})
	must(err)

	cw := cloudwatch.NewFromConfig(cfg)
	now := time.Now()
	dim := func(kv ...string) []cwtypes.Dimension {
		var ds []cwtypes.Dimension
		for i := 0; i < len(kv); i += 2 {
			ds = append(ds, cwtypes.Dimension{Name: aws.String(kv[i]), Value: aws.String(kv[i+1])})
		}
		return ds
	}
	_, err = cw.PutMetricData(cx, &cloudwatch.PutMetricDataInput{Namespace: aws.String("Test/App"), MetricData: []cwtypes.MetricDatum{
		{MetricName: aws.String("Latency"), Dimensions: dim("Service", "web"), Value: aws.Float64(500), Timestamp: aws.Time(now.Add(-25 * time.Second))},
		{MetricName: aws.String("Latency"), Dimensions: dim("Service", "web"), Value: aws.Float64(450), Timestamp: aws.Time(now.Add(-15 * time.Second))},
		{MetricName: aws.String("Latency"), Dimensions: dim("Service", "web"), Value: aws.Float64(520), Timestamp: aws.Time(now.Add(-5 * time.Second))},
	}})
	must(err)
	_, err = cw.PutMetricAlarm(cx, &cloudwatch.PutMetricAlarmInput{AlarmName: aws.String("latency-high"), Namespace: aws.String("Test/App"), MetricName: aws.String("Latency"),
		Dimensions: dim("Service", "web"), Statistic: cwtypes.StatisticAverage, Period: aws.Int32(10), EvaluationPeriods: aws.Int32(1),
		Threshold: aws.Float64(100), ComparisonOperator: cwtypes.ComparisonOperatorGreaterThanThreshold})
	must(err)
	// Service Connect metrics as ECS publishes them in AWS/ECS: outbound
	// by TargetDiscoveryName, inbound by DiscoveryName.
	sc := func(name string, v float64, kv ...string) cwtypes.MetricDatum {
		return cwtypes.MetricDatum{MetricName: aws.String(name), Dimensions: dim(kv...), Value: aws.Float64(v), Timestamp: aws.Time(now.Add(-30 * time.Second))}
	}
	_, err = cw.PutMetricData(cx, &cloudwatch.PutMetricDataInput{Namespace: aws.String("Test/ServiceConnect"), MetricData: []cwtypes.MetricDatum{
		sc("RequestCount", 120, "ClusterName", "web", "ServiceName", "frontend", "TargetDiscoveryName", "api"),
		sc("HTTPCode_Target_5XX_Count", 6, "ClusterName", "web", "ServiceName", "frontend", "TargetDiscoveryName", "api"),
		sc("TargetResponseTime", 12, "ClusterName", "web", "ServiceName", "frontend", "TargetDiscoveryName", "api"),
		sc("RequestCount", 30, "ClusterName", "web", "ServiceName", "api-svc", "TargetDiscoveryName", "db"),
		sc("TargetResponseTime", 3, "ClusterName", "web", "ServiceName", "api-svc", "TargetDiscoveryName", "db"),
		sc("RequestCount", 120, "ClusterName", "web", "ServiceName", "api-svc", "DiscoveryName", "api"),
	}})
	must(err)

	// The rule's targets: a Lambda function (not deliverable in Berth: a
	// failed delivery) and a log group (delivered).
	_, err = cloudwatchlogs.NewFromConfig(cfg).CreateLogGroup(cx, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: aws.String("/events/orders")})
	must(err)
	eb := eventbridge.NewFromConfig(cfg)
	_, err = eb.PutRule(cx, &eventbridge.PutRuleInput{Name: aws.String("orders"), EventPattern: aws.String(`{"source":["shop"]}`), Description: aws.String("orders to billing")})
	must(err)
	_, err = eb.PutTargets(cx, &eventbridge.PutTargetsInput{Rule: aws.String("orders"), Targets: []ebtypes.Target{
		{Id: aws.String("billing"), Arn: aws.String("arn:aws:lambda:us-east-1:000000000000:function:billing")},
		{Id: aws.String("audit"), Arn: aws.String("arn:aws:logs:us-east-1:000000000000:log-group:/events/orders")}}})
	must(err)
	_, err = eb.PutEvents(cx, &eventbridge.PutEventsInput{Entries: []ebtypes.PutEventsRequestEntry{{Source: aws.String("shop"), DetailType: aws.String("Order Placed"), Detail: aws.String(`{"id":"o-1"}`)}}})
	must(err)
	return consoleFixture{lbPort: lport, lbHost: aws.ToString(lbo.LoadBalancers[0].DNSName), nsID: nsID}
}

// consoleViews visits the load balancer, Cloud Map, metrics, alarm,
// scaling and EventBridge views and asserts what they show, then
// deregisters a task definition revision from its page.
func consoleViews(t *testing.T, cx context.Context, p *berthtest.Process, fx consoleFixture, c *ecs.Client,
	run func(string, ...chromedp.Action[chromedp.Void]), waitJS func(string) chromedp.Action[chromedp.Void],
	text func(string, *string) chromedp.Action[chromedp.Void], shot func(string) chromedp.Action[chromedp.Void]) {
	t.Helper()
	u := p.Endpoint + "/console/#/"
	q := func(sel string) string { return fmt.Sprintf("(document.querySelector(%q) !== null)", sel) }
	has := func(sel, sub string) string {
		return fmt.Sprintf("(document.querySelector(%q) !== null && document.querySelector(%q).textContent.includes(%q))", sel, sel, sub)
	}

	// Traffic through the listener: 16 answered by the target, 4 of them
	// 500s, while the pages open.
	go func() {
		for i := 0; i < 16; i++ {
			path := "/x"
			if i%4 == 0 {
				path = "/boom"
			}
			req, _ := http.NewRequestWithContext(cx, "GET", fmt.Sprintf("http://127.0.0.1:%d%s", fx.lbPort, path), nil)
			req.Host = fx.lbHost
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	run("load balancers", chromedp.Navigate(u+"loadbalancers"), waitJS(has(`#loadbalancers`, "shop")+` && `+has(`#targetgroups`, "shop-api")))
	// Rules by priority (5, 10, default), their conditions and actions;
	// target health with state, reason and description, live.
	run("load balancer", chromedp.Navigate(u+"loadbalancers/shop"),
		waitJS(`[...document.querySelectorAll('table.rules tbody tr td:first-child')].map(e => e.textContent).join(',') === '5,10,default'`),
		waitJS(has(`table.rules`, "host-header is api.example")+` && `+has(`table.rules`, `fixed response 200 text/plain "static"`)+` && `+has(`table.rules`, "forward to shop-api")),
		waitJS(has(`table.targets`, "healthy")+` && `+has(`table.targets`, "unhealthy")+` && `+has(`table.targets`, "Target.FailedHealthChecks")),
		shot("load-balancer"))
	run("load balancer traffic", chromedp.Navigate(u+"loadbalancers/shop/traffic?period=10&window=900"),
		waitJS(`(() => { const r = document.querySelector('#traffic tr[data-tg="shop-api"]'); return r && r.querySelector('.rps').textContent !== '–' && r.querySelector('.errs').textContent !== '–' && r.querySelector('.errs').textContent !== '0%' && r.querySelector('.healthy').textContent === '1' && r.querySelector('.unhealthy').textContent === '1'; })()`),
		waitJS(`document.querySelector('#chart-requests polyline.series, #chart-requests circle') !== null`),
		shot("load-balancer-traffic"))

	run("namespaces", chromedp.Navigate(u+"cloudmap"), waitJS(has(`#namespaces`, "shop")))
	run("namespace", chromedp.Navigate(u+"cloudmap/"+fx.nsID),
		waitJS(has(`.sdservice[data-service="api"] h3`, "1 healthy, 1 unhealthy")+` && `+has(`.sdservice[data-service="db"]`, "AWS_INSTANCE_IPV4=10.0.0.3")),
		shot("cloud-map"))
	// The Service Connect graph, from metrics named as ECS publishes them.
	run("service connect traffic", chromedp.Navigate(u+"cloudmap/"+fx.nsID+"/traffic/"+url.PathEscape("Test/ServiceConnect")),
		waitJS(`(() => { const r = document.querySelector('#scedges tr[data-edge="frontend>api"]'); return r && r.querySelector('.rps').textContent === '2' && r.querySelector('.errs').textContent === '5%' && r.querySelector('.lat').textContent === '12 ms'; })()`),
		waitJS(`document.querySelector('#scedges tr[data-edge="api>db"]') !== null && document.querySelector('#scgraph g.edge[data-from="frontend"][data-to="api"]') !== null && document.querySelector('#scgraph g.node[data-node="api"]').textContent.includes('1 unhealthy')`),
		shot("service-connect"))

	run("metric chart", chromedp.Navigate(u+"metrics?ns=Test%2FApp&m=Latency&d=Service%3Dweb&stat=Maximum&period=10&window=900"),
		waitJS(`document.querySelectorAll('#metricchart circle').length >= 2 && `+has(`#metricchart`, "Latency Maximum (520)")), shot("metrics"))
	run("alarms", chromedp.Navigate(u+"alarms"), waitJS(has(`#alarms tr[data-alarm="latency-high"]`, "Latency")))
	// The alarm went to ALARM (evaluated every 10 s; it goes back to
	// INSUFFICIENT_DATA once the datapoints age out of its period).
	run("alarm", chromedp.Navigate(u+"alarms/latency-high"), waitJS(q(`#alarmstate .badge`)+` && `+q(`#alarmchart .threshold`)+` && `+
		has(`#alarmhistory`, "from INSUFFICIENT_DATA to ALARM")+` && document.querySelectorAll('#alarmchart circle').length === 3`), shot("alarm"))

	// Scaling is set up only now: its policy could change the service's
	// desired count while the earlier steps watch it.
	as := aas.NewFromConfig(p.AWSConfig())
	_, err := as.RegisterScalableTarget(cx, &aas.RegisterScalableTargetInput{ServiceNamespace: aastypes.ServiceNamespaceEcs, ResourceId: aws.String("service/web/api"),
		ScalableDimension: aastypes.ScalableDimensionECSServiceDesiredCount, MinCapacity: aws.Int32(1), MaxCapacity: aws.Int32(4)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = as.PutScalingPolicy(cx, &aas.PutScalingPolicyInput{ServiceNamespace: aastypes.ServiceNamespaceEcs, ResourceId: aws.String("service/web/api"),
		ScalableDimension: aastypes.ScalableDimensionECSServiceDesiredCount, PolicyName: aws.String("cpu50"), PolicyType: aastypes.PolicyTypeTargetTrackingScaling,
		TargetTrackingScalingPolicyConfiguration: &aastypes.TargetTrackingScalingPolicyConfiguration{TargetValue: aws.Float64(50),
			PredefinedMetricSpecification: &aastypes.PredefinedMetricSpecification{PredefinedMetricType: aastypes.MetricTypeECSServiceAverageCPUUtilization}}})
	if err != nil {
		t.Fatal(err)
	}

	run("scaling", chromedp.Navigate(u+"scaling"), waitJS(has(`#scalabletargets`, "service/web/api")+` && `+has(`#scalingpolicies`, "keep ECSServiceAverageCPUUtilization at 50")))
	run("service scaling", chromedp.Navigate(u+"clusters/web/services/api/scaling"), waitJS(has(`#scalabletargets`, "service/web/api")+` && `+has(`#scalingpolicies`, "cpu50")))

	run("eventbridge", chromedp.Navigate(u+"events"), waitJS(has(`.bus[data-bus="default"]`, "orders")+` && `+has(`.bus[data-bus="default"]`, "orders to billing")))
	// The rule's deliveries: one record per attempt (the lambda target is
	// not deliverable in Berth: failed, with the reason; the log group:
	// delivered), and its AWS/Events metrics. A second event's records
	// arrive while the page is open.
	run("rule", chromedp.Navigate(u+"events/default/orders"),
		waitJS(has(`#ruletargets`, "function:billing")+` && `+has(`#rulechart`, "FailedInvocations (1)")),
		waitJS(`document.querySelectorAll('#deliveries tbody tr').length === 2`),
		waitJS(has(`#deliveries tr[data-outcome="Failed"]`, "billing")+` && `+has(`#deliveries tr[data-outcome="Failed"]`, "not deliverable")+` && `+has(`#deliveries tr[data-outcome="Delivered"]`, "audit")))
	_, err = eventbridge.NewFromConfig(p.AWSConfig()).PutEvents(cx, &eventbridge.PutEventsInput{Entries: []ebtypes.PutEventsRequestEntry{{Source: aws.String("shop"), DetailType: aws.String("Order Placed"), Detail: aws.String(`{"id":"o-2"}`)}}})
	if err != nil {
		t.Fatal(err)
	}
	run("rule deliveries live", waitJS(`document.querySelectorAll('#deliveries tbody tr').length === 4`), shot("eventbridge-rule"))

	// Errors in words: the AWS error the API answered.
	var msg string
	run("missing load balancer", chromedp.Navigate(u+"loadbalancers/nope"), waitJS(q(`main .error`)), text(`main .error`, &msg))
	if !strings.Contains(msg, "LoadBalancerNotFound") {
		t.Errorf("a missing load balancer shows %q", msg)
	}
	// Deregister a task definition revision from its page.
	run("deregister", chromedp.Navigate(u+"taskdefs/web"), waitJS(q(`[data-dereg="1"]`)), chromedp.Click(chromedp.CSS(`[data-dereg="1"]`)),
		waitJS(has(`#toast`, "Deregister web:1: done")))
	d, err := c.DescribeTaskDefinition(cx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String("web:1")})
	if err != nil || d.TaskDefinition.Status != "INACTIVE" {
		t.Errorf("web:1 after the console deregistered it: %v %v", d, err)
	}
}
