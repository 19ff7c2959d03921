// Network-namespace zones for a PostgreSQL pair (root only): makeZones() puts a bridge on this host and
// two namespaces ("primary", "standby") joined to it by veth pairs, each with an address on a random
// /24 of 10.213.0.0/16; removeZones() deletes them again; ipRun() runs one `ip` command (argv array)
// and throws when it fails. startPair (pg-pair.ts) partitions a zone by setting its host link down.
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";

export interface Zones { bridge: string; subnet: string; ns: Record<"primary" | "standby", string>; hostLink: Record<"primary" | "standby", string>; address: Record<"primary" | "standby", string> }

export function ipRun(args: string[]): void {
  const r = spawnSync("ip", args, { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`ip ${args.join(" ")} exited ${r.status}: ${(r.stderr || "").trim()}`);
}

/** A bridge and two namespaces on a /24 of 10.213.0.0/16 (names and subnet random, so runs do not collide). */
export function makeZones(): Zones {
  const id = randomBytes(2).toString("hex"), k = 1 + (randomBytes(1)[0]! % 250);
  const z: Zones = { bridge: `smbr${id}`, subnet: `10.213.${k}.0/24`, ns: { primary: `sm${id}a`, standby: `sm${id}b` }, hostLink: { primary: `sm${id}a0`, standby: `sm${id}b0` }, address: { primary: `10.213.${k}.2`, standby: `10.213.${k}.3` } };
  try {
    ipRun(["link", "add", z.bridge, "type", "bridge"]);
    ipRun(["addr", "add", `10.213.${k}.1/24`, "dev", z.bridge]);
    ipRun(["link", "set", z.bridge, "up"]);
    for (const n of ["primary", "standby"] as const) {
      const ns = z.ns[n], inner = `${z.hostLink[n].slice(0, -1)}1`;
      ipRun(["netns", "add", ns]);
      ipRun(["link", "add", z.hostLink[n], "type", "veth", "peer", "name", inner]);
      ipRun(["link", "set", inner, "netns", ns]);
      ipRun(["link", "set", z.hostLink[n], "master", z.bridge]);
      ipRun(["link", "set", z.hostLink[n], "up"]);
      ipRun(["netns", "exec", ns, "ip", "addr", "add", `${z.address[n]}/24`, "dev", inner]);
      ipRun(["netns", "exec", ns, "ip", "link", "set", inner, "up"]);
      ipRun(["netns", "exec", ns, "ip", "link", "set", "lo", "up"]);
    }
  } catch (e) { removeZones(z); throw e; }
  return z;
}

export function removeZones(z: Zones): void {
  for (const ns of Object.values(z.ns)) spawnSync("ip", ["netns", "del", ns], { stdio: "ignore" });
  for (const l of Object.values(z.hostLink)) spawnSync("ip", ["link", "del", l], { stdio: "ignore" });
  spawnSync("ip", ["link", "del", z.bridge], { stdio: "ignore" });
}
