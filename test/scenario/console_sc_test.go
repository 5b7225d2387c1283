package scenario

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sd "github.com/aws/aws-sdk-go-v2/service/servicediscovery"
	"github.com/chromedp/chromedp"

	"github.com/berthdev/berth/internal/berthtest"
)

// scEdge is one arrow of the console's Service Connect graph: a client
// service (drawn as the discovery name it serves, or as itself) to a
// discovery name.
type scEdge struct{ From, To string }

// consoleSCTraffic opens the console of a running `berth up` (signing in
// with the link it printed) in headless Chromium on the Service Connect
// traffic tab of namespace, and waits until the graph shows every edge of
// want with a request rate above zero, built from the metrics Berth
// publishes in AWS/ECS. It keeps a screenshot (service-connect-traffic.png
// in artifactDir) and returns each edge's row as the page shows it. Without
// Chromium it logs so and returns nil.
func consoleSCTraffic(t *testing.T, p *berthtest.Process, namespace string, want []scEdge, within time.Duration) map[scEdge][]string {
	t.Helper()
	chrome := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if path, err := exec.LookPath(name); err == nil {
			chrome = path
			break
		}
	}
	if chrome == "" {
		t.Log("no Chromium (scripts/install-deps.sh installs it): the console's traffic view was not checked")
		return nil
	}
	signin := consoleURL.FindString(p.Output.String())
	if signin == "" {
		t.Fatalf("berth up printed no console link:\n%s", p.Output.String())
	}
	cx, cancel := context.WithTimeout(context.Background(), within+time.Minute)
	defer cancel()
	ns, err := cloudMapClient(p.Server).ListNamespaces(cx, &sd.ListNamespacesInput{})
	if err != nil {
		t.Fatal(err)
	}
	nsID := ""
	for _, n := range ns.Namespaces {
		if aws.ToString(n.Name) == namespace {
			nsID = aws.ToString(n.Id)
		}
	}
	if nsID == "" {
		t.Fatalf("no Cloud Map namespace %s", namespace)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chrome), chromedp.NoSandbox, chromedp.WindowSize(1280, 720),
		chromedp.Flag("disable-dev-shm-usage", true))
	actx, acancel := chromedp.NewExecAllocator(cx, opts...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()
	if err := chromedp.Do(bctx); err != nil {
		t.Fatal(err)
	}
	var conds []string
	for _, e := range want {
		conds = append(conds, fmt.Sprintf(`Number((document.querySelector('#scedges tr[data-edge="%s>%s"] td.rps') || {}).textContent) > 0`, e.From, e.To))
	}
	rows := map[scEdge][]string{}
	started := time.Now()
	err = chromedp.Do(bctx,
		chromedp.Navigate(signin), chromedp.WaitVisible(chromedp.CSS(`#clusters`)),
		chromedp.Navigate(p.Endpoint+"/console/#/cloudmap/"+nsID+"/traffic"),
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			ctx, cancel := context.WithTimeout(ctx, within)
			defer cancel()
			_, err := chromedp.Poll[bool](strings.Join(conds, " && ")+` && !!document.querySelector('#scgraph')`, chromedp.WithPollingInterval(100*time.Millisecond))(ctx, tg)
			return err
		}),
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			for _, e := range want {
				cells, err := chromedp.Evaluate[[]string](fmt.Sprintf(`[...document.querySelectorAll('#scedges tr[data-edge="%s>%s"] td')].map(td => td.textContent)`, e.From, e.To))(ctx, tg)
				if err != nil {
					return err
				}
				rows[e] = cells
			}
			buf, err := chromedp.CaptureScreenshot()(ctx, tg)
			if err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(artifactDir(t), "service-connect-traffic.png"), buf, 0o644)
		}))
	if err != nil {
		hctx, hcancel := context.WithTimeout(bctx, 2*time.Second)
		html, _ := chromedp.Run(hctx, chromedp.OuterHTML(chromedp.CSS("main")))
		hcancel()
		t.Fatalf("the console's Service Connect graph of %s after %s: %v\npage: %s", namespace, time.Since(started).Round(time.Second), err, html)
	}
	t.Logf("the console's Service Connect graph showed the traffic %s after opening it: %v", time.Since(started).Round(100*time.Millisecond), rows)
	return rows
}

// parseRate reads a request rate cell ("0.5").
func parseRate(s string) float64 {
	v, _ := strconv.ParseFloat(strings.TrimSpace(s), 64)
	return v
}
