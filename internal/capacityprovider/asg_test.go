package capacityprovider

import (
	"math/rand/v2"
	"strings"
	"testing"
)

func TestCheckName(t *testing.T) {
	for _, c := range []struct {
		name, err string
	}{
		{"blue", ""},
		{"Blue_pool-2", ""},
		{"my-aws", ""},
		{"", "Up to 255"},
		{strings.Repeat("a", 256), "Up to 255"},
		{"has space", "Up to 255"},
		{"aws-pool", "prefixed"},
		{"ECSpool", "prefixed"},
		{"fargate2", "prefixed"},
		{"Fargate_x", "prefixed"},
	} {
		err := CheckName(c.name)
		switch {
		case c.err == "" && err != nil:
			t.Errorf("%q: %v", c.name, err)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%q: got %v, want %q", c.name, err, c.err)
		}
	}
}

func TestParseASGARN(t *testing.T) {
	good := "arn:aws:autoscaling:us-east-1:000000000000:autoScalingGroup:3f9a1c2e-0b6d-4f5e-9a7b-1c2d3e4f5a6b:autoScalingGroupName/blue"
	a, err := ParseASGARN(good)
	if err != nil || a.Name != "blue" || a.Region != "us-east-1" || a.Account != "000000000000" || a.Partition != "aws" || !strings.HasPrefix(a.ID, "3f9a") {
		t.Fatalf("%+v %v", a, err)
	}
	// A name with a colon is kept whole.
	if a, err := ParseASGARN("arn:aws:autoscaling:r:1:autoScalingGroup:id:autoScalingGroupName/a:b"); err != nil || a.Name != "a:b" {
		t.Fatalf("%+v %v", a, err)
	}
	for _, bad := range []string{
		"",
		"blue",
		"arn:aws:autoscaling:us-east-1:000000000000:autoScalingGroup:x",
		"arn:aws:ecs:us-east-1:000000000000:autoScalingGroup:id:autoScalingGroupName/blue",
		"arn:aws:autoscaling::000000000000:autoScalingGroup:id:autoScalingGroupName/blue",
		"arn:aws:autoscaling:us-east-1::autoScalingGroup:id:autoScalingGroupName/blue",
		"arn:aws:autoscaling:us-east-1:000000000000:launchConfiguration:id:autoScalingGroupName/blue",
		"arn:aws:autoscaling:us-east-1:000000000000:autoScalingGroup::autoScalingGroupName/blue",
		"arn:aws:autoscaling:us-east-1:000000000000:autoScalingGroup:id:autoScalingGroupName/",
		"arn:aws:autoscaling:us-east-1:000000000000:autoScalingGroup:id:blue",
		"arn:aws:autoscaling:us-east-1:000000000000:autoScalingGroup:id:autoScalingGroupName/a\nb",
		"arn:foo:autoscaling:us-east-1:000000000000:autoScalingGroup:id:autoScalingGroupName/blue",
	} {
		if _, err := ParseASGARN(bad); err == nil || !strings.Contains(err.Error(), "--capacity-pool") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestMixed(t *testing.T) {
	for _, c := range []struct {
		in   []string
		want bool
	}{
		{nil, false},
		{[]string{Fargate, FargateSpot}, false},
		{[]string{"blue", "green"}, false},
		{[]string{"blue", FargateSpot}, true},
		{[]string{Fargate, "green"}, true},
	} {
		if got := Mixed(c.in); got != c.want {
			t.Errorf("%v: %v", c.in, got)
		}
	}
}

// TestScaleInKeepsTheSplit: scaling a service in one task at a time from
// any Split leaves every intermediate count equal to Split's for that
// many tasks, and a service with a skewed split (after a strategy change)
// loses tasks from the provider above its share first.
func TestScaleInKeepsTheSplit(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for iter := range 2000 {
		k := 1 + rng.IntN(4)
		items := make([]Item, k)
		baseAt := rng.IntN(k + 1)
		W := 0
		for i := range items {
			items[i].Weight = rng.IntN(6)
			if i == baseAt {
				items[i].Base = rng.IntN(4)
			}
			W += items[i].Weight
		}
		if W == 0 {
			items[0].Weight = 1
		}
		n := rng.IntN(40)
		counts := countsOf(items, Split(items, nil, n))
		for m := n; m > 0; m-- {
			i := ScaleIn(items, counts)
			if i < 0 || counts[i] == 0 {
				t.Fatalf("iter %d: ScaleIn %d from %v", iter, i, counts)
			}
			counts[i]--
			want := countsOf(items, Split(items, nil, m-1))
			for j := range counts {
				if counts[j] != want[j] {
					t.Fatalf("iter %d: after scaling %v in to %d tasks: %v, Split gives %v", iter, items, m-1, counts, want)
				}
			}
		}
		if ScaleIn(items, counts) != -1 {
			t.Fatalf("iter %d: ScaleIn with no tasks", iter)
		}
	}
	// Skewed: A weight 1, B weight 1, all 4 tasks on A: the first two
	// stops come from A.
	items := []Item{{"A", 0, 1}, {"B", 0, 1}}
	if i := ScaleIn(items, []int{4, 0}); i != 0 {
		t.Fatalf("skewed: %d", i)
	}
	if i := ScaleIn(items, []int{1, 3}); i != 1 {
		t.Fatalf("skewed: %d", i)
	}
}

func countsOf(items []Item, idx []int) []int {
	c := make([]int, len(items))
	for _, i := range idx {
		c[i]++
	}
	return c
}
