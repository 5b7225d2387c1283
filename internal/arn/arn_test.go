package arn

import "testing"

func TestParseRoundTrip(t *testing.T) {
	for _, s := range []string{
		"arn:aws:ecs:us-east-1:000000000000:cluster/default",
		"arn:aws:ecs:us-east-1:000000000000:task-definition/web:3",
		"arn:aws:iam::000000000000:root",
	} {
		a, err := Parse(s)
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		if a.String() != s {
			t.Errorf("round trip: %s != %s", a, s)
		}
	}
	a, _ := Parse("arn:aws:ecs:us-east-1:000000000000:task-definition/web:3")
	if a.ResourceType() != "task-definition" || a.ResourceID() != "web:3" {
		t.Errorf("got %q %q", a.ResourceType(), a.ResourceID())
	}
}

func TestParseRejects(t *testing.T) {
	for _, s := range []string{"", "arn", "arn:aws:ecs", "cluster/default", "arn::ecs:r:a:x", "arn:aws:ecs:r:a:"} {
		if _, err := Parse(s); err == nil {
			t.Errorf("%q parsed", s)
		}
	}
}
