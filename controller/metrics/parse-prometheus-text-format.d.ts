// Types for parse-prometheus-text-format 1.1 (the package ships none): prom2json-shaped output.
declare module "parse-prometheus-text-format" {
  export interface PromSample { value?: string; labels?: Record<string, string>; timestamp_ms?: string; buckets?: Record<string, string>; quantiles?: Record<string, string>; count?: string; sum?: string }
  export interface PromFamily { name: string; help: string; type: "COUNTER" | "GAUGE" | "HISTOGRAM" | "SUMMARY" | "UNTYPED"; metrics: PromSample[] }
  export default function parsePrometheusTextFormat(text: string): PromFamily[];
}
