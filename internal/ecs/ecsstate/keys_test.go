package ecsstate

import "testing"

func TestTaskDefKeyOfARN(t *testing.T) {
	for _, tc := range []struct {
		arn, key string
		ok       bool
	}{
		{"arn:aws:ecs:us-east-1:000000000000:task-definition/web:3", "/berth/ecs/taskdefs/web#0000000003", true},
		{"arn:aws:ecs:us-east-1:000000000000:task-definition/a-b_c:1234567890", "/berth/ecs/taskdefs/a-b_c#1234567890", true},
		{"arn:aws:ecs:us-east-1:000000000000:task-definition/web", "", false},   // no revision
		{"arn:aws:ecs:us-east-1:000000000000:task-definition/web:0", "", false}, // revisions start at 1
		{"arn:aws:ecs:us-east-1:000000000000:task-definition/web:x", "", false},
		{"arn:aws:ecs:us-east-1:000000000000:task-definition/:1", "", false},
		{"arn:aws:ecs:us-east-1:000000000000:task/c1/abc", "", false},
		{"web:3", "", false},
	} {
		key, ok := TaskDefKeyOfARN(tc.arn)
		if key != tc.key || ok != tc.ok {
			t.Errorf("TaskDefKeyOfARN(%q) = %q, %v; want %q, %v", tc.arn, key, ok, tc.key, tc.ok)
		}
	}
}
