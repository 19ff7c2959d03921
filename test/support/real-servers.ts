// Tests on real servers (PostgreSQL, namespaces): run the test when the machine can, otherwise say so
// on a line of its own and register it as skipped (a skip is never counted as a pass).
import { test } from "uvu";

export function whenAvailable(label: string, reason: string | null, name: string, fn: () => Promise<void>): void {
  if (reason !== null) {
    console.log(`${label}: SKIPPED: ${reason}`);
    test.skip(name, () => {});
  } else test(name, fn);
}
