package taskrun

import (
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func code(c int) *int { return &c }

func TestNext(t *testing.T) {
	running := CView{Name: "dep", Known: CRunning, StartedAt: t0, StartTimeout: time.Minute}
	healthyDep := running
	healthyDep.Health = HealthHealthy
	unknownDep := running
	unknownDep.Health = HealthUnknown
	exited0 := CView{Name: "dep", Known: CStopped, StartedAt: t0, ExitCode: code(0)}
	exited1 := CView{Name: "dep", Known: CStopped, StartedAt: t0, ExitCode: code(1)}
	neverRan := CView{Name: "dep", Known: CStopped}
	created := CView{Name: "dep", Known: CCreated}
	on := func(cond string) []Dep { return []Dep{{Container: "dep", Condition: cond}} }
	cases := []struct {
		name     string
		c        CView
		dep      *CView
		stopping bool
		now      time.Time
		want     Action
	}{
		{"none pulls", CView{Known: CNone}, nil, false, t0, Pull},
		{"pulled creates", CView{Known: CPulled}, nil, false, t0, Create},
		{"created starts", CView{Known: CCreated}, nil, false, t0, Start},
		{"running waits", CView{Known: CRunning}, nil, false, t0, Wait},
		{"stopped stays stopped", CView{Known: CStopped}, nil, false, t0, Wait},
		{"START waits for dep created", CView{Known: CPulled, DependsOn: on(CondStart)}, &created, false, t0, Wait},
		{"START met by running dep", CView{Known: CPulled, DependsOn: on(CondStart)}, &running, false, t0, Create},
		{"START met by dep that ran and exited", CView{Known: CPulled, DependsOn: on(CondStart)}, &exited1, false, t0, Create},
		{"START never: dep never ran", CView{Known: CPulled, DependsOn: on(CondStart)}, &neverRan, false, t0, Abandon},
		{"START has no timeout", CView{Known: CPulled, DependsOn: on(CondStart)}, &created, false, t0.Add(time.Hour), Wait},
		{"COMPLETE waits for running dep", CView{Known: CPulled, DependsOn: on(CondComplete)}, &running, false, t0, Wait},
		{"COMPLETE met by exit 1", CView{Known: CPulled, DependsOn: on(CondComplete)}, &exited1, false, t0, Create},
		{"COMPLETE times out", CView{Known: CPulled, DependsOn: on(CondComplete)}, &running, false, t0.Add(2 * time.Minute), Abandon},
		{"SUCCESS met by exit 0", CView{Known: CPulled, DependsOn: on(CondSuccess)}, &exited0, false, t0, Create},
		{"SUCCESS never after exit 1", CView{Known: CPulled, DependsOn: on(CondSuccess)}, &exited1, false, t0, Abandon},
		{"SUCCESS waits for running dep", CView{Known: CPulled, DependsOn: on(CondSuccess)}, &running, false, t0.Add(time.Second), Wait},
		{"SUCCESS times out", CView{Known: CPulled, DependsOn: on(CondSuccess)}, &running, false, t0.Add(2 * time.Minute), Abandon},
		{"HEALTHY met", CView{Known: CPulled, DependsOn: on(CondHealthy)}, &healthyDep, false, t0, Create},
		{"HEALTHY waits while unknown", CView{Known: CPulled, DependsOn: on(CondHealthy)}, &unknownDep, false, t0.Add(time.Second), Wait},
		{"HEALTHY times out", CView{Known: CPulled, DependsOn: on(CondHealthy)}, &unknownDep, false, t0.Add(2 * time.Minute), Abandon},
		{"HEALTHY never after dep exit", CView{Known: CPulled, DependsOn: on(CondHealthy)}, &exited0, false, t0, Abandon},
		{"HEALTHY waits for dep not started (no timeout yet)", CView{Known: CPulled, DependsOn: on(CondHealthy)}, &created, false, t0.Add(time.Hour), Wait},
		{"missing dependency", CView{Known: CPulled, DependsOn: []Dep{{Container: "ghost", Condition: CondStart}}}, nil, false, t0, Abandon},
		{"unknown condition", CView{Known: CPulled, DependsOn: on("SOMETIMES")}, &running, false, t0, Abandon},
		{"links wait for target created", CView{Known: CPulled, Needs: []string{"dep"}}, &CView{Name: "dep", Known: CPulled}, false, t0, Wait},
		{"links met", CView{Known: CPulled, Needs: []string{"dep"}}, &created, false, t0, Create},
		{"stopping: running stops", CView{Known: CRunning}, nil, true, t0, Stop},
		{"stopping: created is abandoned", CView{Known: CCreated}, nil, true, t0, Abandon},
		{"stopping: none is abandoned", CView{Known: CNone}, nil, true, t0, Abandon},
		{"stopping: pulled is abandoned", CView{Known: CPulled}, nil, true, t0, Abandon},
		{"stopping: stopped waits", CView{Known: CStopped}, nil, true, t0, Wait},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.c.Name = "c"
			all := map[string]CView{"c": tc.c}
			if tc.dep != nil {
				all[tc.dep.Name] = *tc.dep
			}
			got := next(tc.c, tc.stopping, all, tc.now)
			if got.Action != tc.want {
				t.Errorf("next = %s (%s), want %s", got.Action, got.Reason, tc.want)
			}
			if got.Action == Abandon && !tc.stopping && got.Reason == "" {
				t.Errorf("abandon without a reason")
			}
		})
	}
}

func TestNextTimeoutReason(t *testing.T) {
	dep := CView{Name: "db", Known: CRunning, StartedAt: t0, StartTimeout: time.Second, Health: HealthUnknown}
	c := CView{Name: "app", Known: CPulled, DependsOn: []Dep{{"db", CondHealthy}}}
	got := next(c, false, map[string]CView{"db": dep, "app": c}, t0.Add(2*time.Second))
	want := "dependency graph: container ordering dependency [db] for target [app] has timed out"
	if got.Action != Abandon || got.Reason != want {
		t.Errorf("got %s %q, want abandon %q", got.Action, got.Reason, want)
	}
}

// Stop order: a container stops only after those that depend on it.
func TestNextStopOrder(t *testing.T) {
	db := CView{Name: "db", Known: CRunning}
	app := CView{Name: "app", Known: CRunning, DependsOn: []Dep{{"db", CondHealthy}}}
	proxy := CView{Name: "proxy", Known: CRunning, DependsOn: []Dep{{"app", CondStart}}}
	all := map[string]CView{"db": db, "app": app, "proxy": proxy}
	want := map[string]Action{"proxy": Stop, "app": Wait, "db": Wait}
	for n, w := range want {
		if got := next(all[n], true, all, t0); got.Action != w {
			t.Errorf("%s: %s, want %s", n, got.Action, w)
		}
	}
	proxy.Known = CStopped
	all["proxy"] = proxy
	if got := next(app, true, all, t0); got.Action != Stop {
		t.Errorf("app after proxy stopped: %s", got.Action)
	}
	if got := next(db, true, all, t0); got.Action != Wait {
		t.Errorf("db before app stopped: %s", got.Action)
	}
	app.Known = CStopped
	all["app"] = app
	if got := next(db, true, all, t0); got.Action != Stop {
		t.Errorf("db last: %s", got.Action)
	}
	// A dependent that never started does not hold its dependency up.
	all = map[string]CView{"db": db, "app": {Name: "app", Known: CStopped, DependsOn: []Dep{{"db", CondStart}}}}
	if got := next(db, true, all, t0); got.Action != Stop {
		t.Errorf("db with stopped dependent: %s", got.Action)
	}
}

func TestTaskHealth(t *testing.T) {
	e := func(h string) CView { return CView{Essential: true, Health: h} }
	n := func(h string) CView { return CView{Essential: false, Health: h} }
	cases := []struct {
		name string
		cs   []CView
		want string
	}{
		{"no health checks", []CView{e(""), n("")}, HealthUnknown},
		{"all essential healthy", []CView{e(HealthHealthy), e(HealthHealthy), e("")}, HealthHealthy},
		{"one essential unhealthy", []CView{e(HealthHealthy), e(HealthUnhealthy)}, HealthUnhealthy},
		{"unhealthy wins over unknown", []CView{e(HealthUnknown), e(HealthUnhealthy)}, HealthUnhealthy},
		{"unknown essential", []CView{e(HealthHealthy), e(HealthUnknown)}, HealthUnknown},
		{"non-essential unhealthy ignored", []CView{e(HealthHealthy), n(HealthUnhealthy)}, HealthHealthy},
		{"only non-essential checks", []CView{e(""), n(HealthHealthy)}, HealthUnknown},
	}
	for _, tc := range cases {
		if got := TaskHealth(tc.cs); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}

func TestStopCause(t *testing.T) {
	cases := []struct {
		name     string
		cs       []CView
		failure  string
		wantCode string
		stop     bool
	}{
		{"all running", []CView{{Essential: true, Known: CRunning, StartedAt: t0}}, "", "", false},
		{"non-essential exit", []CView{{Essential: true, Known: CRunning, StartedAt: t0}, {Known: CStopped, StartedAt: t0}}, "", "", false},
		{"essential exit", []CView{{Essential: true, Known: CStopped, StartedAt: t0, ExitCode: code(0)}}, "", StopCodeEssentialExited, true},
		{"essential never started", []CView{{Essential: true, Known: CStopped}}, "", StopCodeFailedToStart, true},
		{"failure", []CView{{Essential: true, Known: CPulled}}, "CannotPullContainerError: x", StopCodeFailedToStart, true},
	}
	for _, tc := range cases {
		code, _, stop := stopCause(tc.cs, tc.failure)
		if code != tc.wantCode || stop != tc.stop {
			t.Errorf("%s: %q %v", tc.name, code, stop)
		}
	}
}

func TestPauseProgram(t *testing.T) {
	for _, arch := range []string{"amd64", "arm64"} {
		p, err := pauseProgram(arch)
		if err != nil || len(p) < 120 || string(p[1:4]) != "ELF" {
			t.Errorf("%s: %d bytes, %v", arch, len(p), err)
		}
	}
	if _, err := pauseProgram("mips"); err == nil {
		t.Error("mips: no error")
	}
}
