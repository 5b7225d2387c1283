package api_test

import (
	"testing"

	_ "github.com/berthdev/berth/internal/api/applicationautoscalingapi"
	_ "github.com/berthdev/berth/internal/api/cloudtrailapi"
	_ "github.com/berthdev/berth/internal/api/cloudwatchapi"
	_ "github.com/berthdev/berth/internal/api/ecrapi"
	_ "github.com/berthdev/berth/internal/api/ecsapi"
	_ "github.com/berthdev/berth/internal/api/elbv2api"
	_ "github.com/berthdev/berth/internal/api/eventsapi"
	_ "github.com/berthdev/berth/internal/api/logsapi"
	_ "github.com/berthdev/berth/internal/api/servicediscoveryapi"
	"github.com/berthdev/berth/internal/lazyre"
)

// TestModelPatternsCompile: the model packages' patterns compile only at their first use, so a
// pattern that does not compile would show only when a request hits it; here all of them do.
func TestModelPatternsCompile(t *testing.T) {
	if err := lazyre.CompileAll(); err != nil {
		t.Fatal(err)
	}
}
