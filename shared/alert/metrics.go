package alert

import (
	"io"
	"time"
)

// MetricsNamespace is the CloudWatch namespace of Flagline's metrics.
const MetricsNamespace = "Flagline"

// invocationMetrics counts what one invocation did.
type invocationMetrics struct {
	published int
	held      int
	failures  int
}

type emfMetric struct {
	Name string `json:"Name"`
	Unit string `json:"Unit"`
}

type emfDirective struct {
	Namespace  string      `json:"Namespace"`
	Dimensions [][]string  `json:"Dimensions"`
	Metrics    []emfMetric `json:"Metrics"`
}

type emfMeta struct {
	Timestamp         int64          `json:"Timestamp"`
	CloudWatchMetrics []emfDirective `json:"CloudWatchMetrics"`
}

type emfLine struct {
	AWS             emfMeta `json:"_aws"`
	Function        string  `json:"Function"`
	AlertsPublished int     `json:"AlertsPublished"`
	AlertsHeld      int     `json:"AlertsHeld"`
	AlertFailures   int     `json:"AlertFailures"`
}

// write writes the counts as one CloudWatch Embedded Metric Format line:
// CloudWatch Logs turns it into the metrics AlertsPublished, AlertsHeld
// (copies held for a digest) and AlertFailures (namespace Flagline, dimension Function=alert) with no
// call to the CloudWatch API.
func (m invocationMetrics) write(w io.Writer, at time.Time) error {
	b, err := marshal(emfLine{
		AWS: emfMeta{
			Timestamp: at.UnixMilli(),
			CloudWatchMetrics: []emfDirective{{
				Namespace:  MetricsNamespace,
				Dimensions: [][]string{{"Function"}},
				Metrics:    []emfMetric{{"AlertsPublished", "Count"}, {"AlertsHeld", "Count"}, {"AlertFailures", "Count"}},
			}},
		},
		Function:        "alert",
		AlertsPublished: m.published,
		AlertsHeld:      m.held,
		AlertFailures:   m.failures,
	})
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}
