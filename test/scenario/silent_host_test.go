package scenario

import (
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/berthdev/berth/internal/agentgw"
	"github.com/berthdev/berth/internal/hollow"
)

// freezer is a TCP proxy that can go silent: after freeze it stops moving
// bytes either way but keeps every connection open, as a host that
// vanished from the network does (no FIN, no RST).
type freezer struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	frozen chan struct{}
	conns  []net.Conn
}

func newFreezer(t *testing.T, target string) *freezer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &freezer{ln: ln, target: target, frozen: make(chan struct{})}
	go f.serve()
	t.Cleanup(func() {
		ln.Close()
		f.mu.Lock()
		for _, c := range f.conns {
			c.Close()
		}
		f.mu.Unlock()
	})
	return f
}

func (f *freezer) addr() string { return "http://" + f.ln.Addr().String() }

func (f *freezer) freeze() { close(f.frozen) }

func (f *freezer) serve() {
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		b, err := net.Dial("tcp", f.target)
		if err != nil {
			c.Close()
			continue
		}
		f.mu.Lock()
		f.conns = append(f.conns, c, b)
		f.mu.Unlock()
		go f.pipe(c, b)
		go f.pipe(b, c)
	}
}

func (f *freezer) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		select {
		case <-f.frozen:
			return // stop reading; the connection stays open
		default:
		}
		src.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		n, err := src.Read(buf)
		if n > 0 {
			select {
			case <-f.frozen:
				return
			default:
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				continue
			}
			return // EOF or a broken connection
		}
	}
}

// TestSilentHostIsDetected: an instance whose host goes silent (its
// connection stays open, nothing arrives) is marked disconnected within
// 10 s; the disconnect grace later its service task runs elsewhere, while
// the silent host's task is left RUNNING (nothing tells it to stop).
// Scheduler logic on hollow nodes; the silence is real TCP silence through
// a proxy.
func TestSilentHostIsDetected(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the silence limit")
	}
	e := startHollow(t, 1, []string{"zone-b"})
	cx := ctx(t)
	tok, err := agentgw.CreateJoinToken(cx, e.s.Endpoint, e.s.Region, e.s.Creds.AccessKeyID, e.s.Creds.SecretAccessKey, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	proxy := newFreezer(t, e.s.Endpoint[len("http://"):])
	far, err := hollow.Start(cx, hollow.Config{Endpoint: proxy.addr(), Region: e.s.Region, JoinToken: tok.Token, Count: 1,
		AZs: []string{"zone-a"}, StateDir: t.TempDir(),
		Delays: hollow.Delays{Pull: 10 * time.Millisecond, Start: 10 * time.Millisecond, Stop: 10 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(far.Close)
	farID := far.Nodes[0].InstanceID

	td := e.taskDef(t, "edge", "edge:1")
	if _, err := e.ecs.CreateService(cx, &ecs.CreateServiceInput{ServiceName: aws.String("edge"), TaskDefinition: aws.String(td),
		DesiredCount: aws.Int32(2)}); err != nil {
		t.Fatal(err)
	}
	e.waitStable(t, "edge", 20*time.Second)
	var farTask string
	onFar := func() int {
		l, err := e.ecs.ListTasks(cx, &ecs.ListTasksInput{ServiceName: aws.String("edge")})
		if err != nil || len(l.TaskArns) == 0 {
			return -1
		}
		d, err := e.ecs.DescribeTasks(cx, &ecs.DescribeTasksInput{Tasks: l.TaskArns})
		if err != nil {
			return -1
		}
		n := 0
		for _, task := range d.Tasks {
			if aws.ToString(task.LastStatus) == "RUNNING" && strings.HasSuffix(aws.ToString(task.ContainerInstanceArn), "/"+farID) {
				n++
				farTask = aws.ToString(task.TaskArn)
			}
		}
		return n
	}
	if onFar() != 1 {
		t.Fatalf("expected one task on the far instance before the silence, got %d", onFar())
	}

	proxy.freeze()
	frozenAt := time.Now()
	var detected time.Duration
	eventuallyTrue(t, "far instance disconnected", 15*time.Second, func() bool {
		d, err := e.ecs.DescribeContainerInstances(cx, &ecs.DescribeContainerInstancesInput{ContainerInstances: []string{farID}})
		if err != nil || len(d.ContainerInstances) != 1 {
			return false
		}
		if !d.ContainerInstances[0].AgentConnected {
			detected = time.Since(frozenAt)
			return true
		}
		return false
	})
	if detected > 10*time.Second {
		t.Fatalf("silent host detected after %s, want within 10s", detected)
	}
	var replaced time.Duration
	eventuallyTrue(t, "2 tasks running off the silent host", 30*time.Second, func() bool {
		l, err := e.ecs.ListTasks(cx, &ecs.ListTasksInput{ServiceName: aws.String("edge")})
		if err != nil || len(l.TaskArns) == 0 {
			return false
		}
		d, err := e.ecs.DescribeTasks(cx, &ecs.DescribeTasksInput{Tasks: l.TaskArns})
		if err != nil {
			return false
		}
		n := 0
		for _, task := range d.Tasks {
			if aws.ToString(task.LastStatus) == "RUNNING" && !strings.HasSuffix(aws.ToString(task.ContainerInstanceArn), "/"+farID) {
				n++
			}
		}
		if n == 2 {
			replaced = time.Since(frozenAt)
			return true
		}
		return false
	})
	t.Logf("silent host: disconnected after %s, task running elsewhere after %s", detected.Round(100*time.Millisecond), replaced.Round(100*time.Millisecond))
	if replaced > 20*time.Second {
		t.Errorf("the silent host's service task ran elsewhere after %s; want within 20 s", replaced)
	}
	d, err := e.ecs.DescribeTasks(cx, &ecs.DescribeTasksInput{Tasks: []string{farTask}})
	if err != nil || len(d.Tasks) != 1 {
		t.Fatalf("describe the silent host's task: %v", err)
	}
	if tk := d.Tasks[0]; aws.ToString(tk.LastStatus) != "RUNNING" || aws.ToString(tk.DesiredStatus) != "RUNNING" {
		t.Fatalf("the silent host's task: last %s desired %s %s %q", aws.ToString(tk.LastStatus), aws.ToString(tk.DesiredStatus), tk.StopCode, aws.ToString(tk.StoppedReason))
	}
	eventuallyTrue(t, "runningCount 3 (2 and the one on the silent host)", 5*time.Second, func() bool {
		return e.describe(t, "edge").RunningCount == 3
	})
}
