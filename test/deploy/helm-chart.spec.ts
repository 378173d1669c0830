import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { chartDir, helm, render, root, validateManifests, type Manifest } from './helm';

// The chart is checked with the real helm binary and the rendered objects against the Kubernetes
// API schemas (offline), for the default values and the two example values files.

/* eslint-disable @typescript-eslint/no-explicit-any -- rendered manifests are untyped YAML */
type Any = any;

const FIVE = ['agent-gateway', 'approvals', 'audit', 'identity', 'objects'];
const VARIANTS: Record<string, string[]> = {
  default: [],
  hardened: ['ci/hardened-values.yaml'],
  'external services': ['ci/external-services-values.yaml'],
};

const rendered: Record<string, Manifest[]> = Object.fromEntries(Object.entries(VARIANTS).map(([name, files]) => [name, render(files)]));

const ofKind = (docs: Manifest[], kind: string): Any[] => docs.filter((d) => d.kind === kind);
const podSpecOf = (doc: Any): Any => doc.spec.template.spec;
const workloads = (docs: Manifest[]): Any[] => docs.filter((d) => d.kind === 'Deployment' || d.kind === 'Job');
const componentOf = (doc: Any): string => doc.metadata.labels['app.kubernetes.io/component'];

/** Every environment variable name config.ts reads. */
function knownConfigVariables(): Set<string> {
  const source = readFileSync(path.join(root, 'libs/platform/src/config/config.ts'), 'utf8');
  const names = new Set<string>(['PORT']);
  for (const m of source.matchAll(/env\.([A-Z][A-Z0-9_]*)/g)) names.add(m[1]);
  for (const m of source.matchAll(/(?:int|url|rate)\('([A-Z][A-Z0-9_]*)'/g)) names.add(m[1]);
  return names;
}

describe('helm lint', () => {
  it.each(Object.entries(VARIANTS))('%s values pass helm lint --strict', (_name, files) => {
    const r = helm(['lint', '--strict', chartDir, ...files.flatMap((f) => ['-f', path.join(chartDir, f)])]);
    expect({ status: r.status, out: r.stdout + r.stderr }).toEqual({ status: 0, out: expect.stringContaining('0 chart(s) failed') });
  });
});

describe('Kubernetes schema validation (offline)', () => {
  const all = Object.entries(rendered).flatMap(([variant, docs]) => docs.map((d) => ({ variant, doc: d })));
  const results = validateManifests(all.map((x) => x.doc));

  it('validated every rendered object of every variant', () => {
    expect(results).toHaveLength(all.length);
    expect(new Set(all.map((x) => x.doc.kind))).toEqual(
      new Set([
        'ConfigMap',
        'Deployment',
        'Job',
        'NetworkPolicy',
        'PodDisruptionBudget',
        'Service',
        'ServiceAccount',
        'HorizontalPodAutoscaler',
        'Ingress',
        'ServiceMonitor',
      ]),
    );
  });

  it('every object matches its API schema, with no unknown field', () => {
    const failures = results
      .filter((r) => r.errors.length > 0)
      .map((r) => ({ variant: all[r.index].variant, kind: r.kind, name: r.name, errors: r.errors }));
    expect(failures).toEqual([]);
  });

  it('the validator itself rejects a wrong type, a misspelt field and a bad enum', () => {
    const deployment = structuredClone(ofKind(rendered.default, 'Deployment')[0]);
    deployment.spec.replicas = 'two';
    podSpecOf(deployment).containers[0].securityContex = {};
    const policy = structuredClone(ofKind(rendered.default, 'NetworkPolicy')[0]);
    policy.spec.policyTypes = ['Sideways'];
    const [d, p] = validateManifests([deployment, policy]);
    expect(d.errors).toEqual(
      expect.arrayContaining(['data/spec/replicas must be integer', expect.stringContaining('securityContex: unknown field')]),
    );
    expect(p.errors).toEqual([expect.stringContaining('policyTypes/0 must be equal to one of the allowed values')]);
  });
});

describe.each(Object.keys(VARIANTS))('security properties (%s values)', (variant) => {
  const docs = rendered[variant];

  it('renders no Secret and puts nothing secret in a ConfigMap', () => {
    expect(ofKind(docs, 'Secret')).toEqual([]);
    for (const cm of ofKind(docs, 'ConfigMap')) {
      for (const [key, value] of Object.entries(cm.data as Record<string, string>)) {
        expect({ key, secretName: /PASSWORD|SECRET|TOKEN|DATABASE_URL|MASTER_KEY$|CREDENTIAL/i.test(key) }).toEqual({
          key,
          secretName: false,
        });
        expect({ key, credentialsInUrl: /:\/\/[^/@\s]+:[^/@\s]+@/.test(value) }).toEqual({ key, credentialsInUrl: false });
      }
    }
  });

  it('takes credentials only from Secrets (database URL, admin) and mounts the master key as a file', () => {
    for (const w of workloads(docs)) {
      for (const c of podSpecOf(w).containers) {
        const env: Any[] = c.env ?? [];
        for (const e of env.filter((x) => /DATABASE_URL|PASSWORD|EMAIL|MASTER_KEY$/.test(x.name))) {
          expect({ container: c.name, name: e.name, value: e.value, fromSecret: Boolean(e.valueFrom?.secretKeyRef) }).toEqual({
            container: c.name,
            name: e.name,
            value: undefined,
            fromSecret: true,
          });
        }
      }
    }
    for (const d of ofKind(docs, 'Deployment')) {
      const vol = podSpecOf(d).volumes.find((v: Any) => v.name === 'master-key');
      expect(vol.secret.secretName).toEqual(expect.any(String));
      expect(podSpecOf(d).containers[0].env.map((e: Any) => e.name)).toContain('DATABASE_URL');
    }
  });

  it('runs every container non-root, read-only, without privilege escalation or capabilities, under seccomp', () => {
    const containers = workloads(docs).flatMap((w) =>
      [...(podSpecOf(w).initContainers ?? []), ...podSpecOf(w).containers].map((c: Any) => ({ w, c })),
    );
    expect(containers.length).toBeGreaterThan(0);
    for (const { w, c } of containers) {
      const pod = podSpecOf(w).securityContext ?? {};
      const sc = c.securityContext ?? {};
      expect({
        name: `${w.kind}/${w.metadata.name}/${c.name}`,
        runAsNonRoot: sc.runAsNonRoot ?? pod.runAsNonRoot,
        uid: (sc.runAsUser ?? pod.runAsUser) > 0,
        readOnlyRootFilesystem: sc.readOnlyRootFilesystem,
        allowPrivilegeEscalation: sc.allowPrivilegeEscalation,
        privileged: sc.privileged ?? false,
        drop: sc.capabilities?.drop,
        add: sc.capabilities?.add ?? [],
        seccomp: (sc.seccompProfile ?? pod.seccompProfile)?.type,
      }).toEqual({
        name: `${w.kind}/${w.metadata.name}/${c.name}`,
        runAsNonRoot: true,
        uid: true,
        readOnlyRootFilesystem: true,
        allowPrivilegeEscalation: false,
        privileged: false,
        drop: ['ALL'],
        add: [],
        seccomp: 'RuntimeDefault',
      });
    }
    for (const w of workloads(docs)) {
      expect({ name: w.metadata.name, token: podSpecOf(w).automountServiceAccountToken }).toEqual({ name: w.metadata.name, token: false });
      expect(podSpecOf(w).hostNetwork ?? false).toBe(false);
    }
  });

  it('gives every Deployment startup, liveness and readiness probes on the health endpoints, resources and a spread', () => {
    const deployments = ofKind(docs, 'Deployment');
    expect(deployments.length).toBeGreaterThan(0);
    for (const d of deployments) {
      const c = podSpecOf(d).containers[0];
      expect({
        name: d.metadata.name,
        startup: c.startupProbe?.httpGet?.path,
        live: c.livenessProbe?.httpGet?.path,
        ready: c.readinessProbe?.httpGet?.path,
      }).toEqual({
        name: d.metadata.name,
        startup: '/health/live',
        live: '/health/live',
        ready: '/health/ready',
      });
      expect(c.resources.requests).toEqual(expect.objectContaining({ cpu: expect.anything(), memory: expect.anything() }));
      expect(c.resources.limits.memory).toEqual(expect.anything());
      expect(c.command).toEqual(['node', `dist/apps/${componentOf(d)}/main.js`]);
      const spread: Any[] = podSpecOf(d).topologySpreadConstraints;
      expect(spread.map((s) => s.topologyKey)).toEqual(['topology.kubernetes.io/zone', 'kubernetes.io/hostname']);
      for (const s of spread) expect(s.labelSelector.matchLabels['app.kubernetes.io/component']).toBe(componentOf(d));
    }
  });

  it('sets only environment variables that config.ts reads', () => {
    const known = knownConfigVariables();
    const names = [
      ...ofKind(docs, 'ConfigMap').flatMap((cm) => Object.keys(cm.data)),
      ...workloads(docs).flatMap((w) => podSpecOf(w).containers.flatMap((c: Any) => (c.env ?? []).map((e: Any) => e.name))),
    ];
    expect(names.filter((n) => !known.has(n))).toEqual([]);
  });

  it('has a PodDisruptionBudget and a Service per Deployment', () => {
    const deployments = ofKind(docs, 'Deployment')
      .map((d) => d.metadata.name)
      .sort();
    expect(
      ofKind(docs, 'PodDisruptionBudget')
        .map((p) => p.metadata.name)
        .sort(),
    ).toEqual(deployments);
    expect(
      ofKind(docs, 'Service')
        .map((p) => p.metadata.name)
        .sort(),
    ).toEqual(deployments);
  });

  it('migrates every deployed service in a pre-install/pre-upgrade hook Job before the pods start', () => {
    const jobs = ofKind(docs, 'Job');
    const services = ofKind(docs, 'Deployment').map(componentOf).sort();
    expect(jobs.map((j) => podSpecOf(j).containers[0].command.join(' ')).sort()).toEqual(
      services.map((s) => `node dist/apps/${s}/main.js migrate`),
    );
    for (const j of jobs) {
      expect(j.metadata.annotations['helm.sh/hook']).toBe('pre-install,pre-upgrade');
      expect(podSpecOf(j).restartPolicy).toBe('Never');
      // Hooks run before the release's other objects exist: the Job uses nothing but its own hook objects and Secrets.
      expect(podSpecOf(j).containers[0].envFrom).toBeUndefined();
      const sa = docs.find((d) => d.kind === 'ServiceAccount' && d.metadata.name === podSpecOf(j).serviceAccountName);
      expect(sa?.metadata.annotations?.['helm.sh/hook']).toBe('pre-install,pre-upgrade');
    }
  });

  it('denies all traffic by default and opens no rule to everyone', () => {
    const policies = ofKind(docs, 'NetworkPolicy');
    const deny = policies.find((p) => p.metadata.name.endsWith('-default-deny'));
    expect(deny.spec.policyTypes).toEqual(['Ingress', 'Egress']);
    expect(deny.spec.ingress).toBeUndefined();
    expect(deny.spec.egress).toBeUndefined();
    expect(deny.spec.podSelector.matchLabels).toEqual({ 'app.kubernetes.io/name': 'custodian', 'app.kubernetes.io/instance': 'rel' });
    for (const p of policies) {
      for (const rule of p.spec.egress ?? [])
        expect({ policy: p.metadata.name, to: (rule.to ?? []).length > 0, ports: (rule.ports ?? []).length > 0 }).toEqual({
          policy: p.metadata.name,
          to: true,
          ports: true,
        });
      for (const rule of p.spec.ingress ?? [])
        expect({ policy: p.metadata.name, from: (rule.from ?? []).length > 0 }).toEqual({ policy: p.metadata.name, from: true });
    }
    // Services talk over NATS only: no policy admits traffic from another Custodian pod.
    const fromOwnPods = policies
      .flatMap((p) => (p.spec.ingress ?? []).flatMap((r: Any) => r.from))
      .filter((f: Any) => f.podSelector?.matchLabels?.['app.kubernetes.io/name'] === 'custodian');
    expect(fromOwnPods).toEqual([]);
    const egressPorts = policies.flatMap((p) => (p.spec.egress ?? []).flatMap((r: Any) => r.ports.map((x: Any) => x.port))).sort();
    expect(new Set(egressPorts)).toEqual(new Set(variant === 'hardened' ? [53, 5432, 4222, 443] : [53, 5432, 4222]));
  });
});

describe('values', () => {
  it('hardened: pulls by digest, scales, spreads strictly, TLS at the Ingress, ServiceMonitor, egress only to the named endpoints', () => {
    const docs = rendered.hardened;
    for (const w of workloads(docs))
      for (const c of podSpecOf(w).containers)
        expect(c.image).toMatch(/^registry\.internal\.example\/custodian\/custodian@sha256:[a-f0-9]{64}$/);
    expect(ofKind(docs, 'HorizontalPodAutoscaler').map(componentOf).sort()).toEqual(['identity', 'objects']);
    for (const d of ofKind(docs, 'Deployment')) {
      expect({ c: componentOf(d), replicas: d.spec.replicas }).toEqual({
        c: componentOf(d),
        replicas: ['identity', 'objects'].includes(componentOf(d)) ? undefined : 2,
      });
      for (const s of podSpecOf(d).topologySpreadConstraints) expect(s.whenUnsatisfiable).toBe('DoNotSchedule');
    }
    const [ingress] = ofKind(docs, 'Ingress');
    expect(ingress.spec.tls).toEqual([{ hosts: ['custodian.internal.example'], secretName: 'custodian-tls' }]);
    const backends = new Set(ingress.spec.rules[0].http.paths.map((p: Any) => p.backend.service.name));
    expect([...backends].sort()).toEqual(FIVE.map((s) => `rel-custodian-${s}`));
    expect(ofKind(docs, 'ServiceMonitor')[0].spec.endpoints[0].path).toBe('/metrics');
    const gatewayEgress = ofKind(docs, 'NetworkPolicy').find((p) => p.metadata.name === 'rel-custodian-agent-gateway-egress');
    expect(gatewayEgress.spec.egress).toEqual([{ to: [{ ipBlock: { cidr: '10.20.30.40/32' } }], ports: [{ protocol: 'TCP', port: 443 }] }]);
    const identityEgress = ofKind(docs, 'NetworkPolicy').find((p) => p.metadata.name === 'rel-custodian-identity-egress');
    expect(identityEgress.spec.egress[0].to).toEqual([{ ipBlock: { cidr: '10.20.31.0/28' } }]);
    const objectsEgress = ofKind(docs, 'NetworkPolicy').find((p) => p.metadata.name === 'rel-custodian-objects-egress');
    expect(objectsEgress.spec.egress).toEqual([{ to: [{ ipBlock: { cidr: '10.20.32.0/28' } }], ports: [{ protocol: 'TCP', port: 443 }] }]);
  });

  it('default: no model endpoint or OIDC egress, no Ingress, no ServiceMonitor, no HPA', () => {
    const docs = rendered.default;
    expect(docs.filter((d) => /-(agent-gateway|identity)-egress$/.test(d.metadata.name))).toEqual([]);
    expect(ofKind(docs, 'Ingress')).toEqual([]);
    expect(ofKind(docs, 'ServiceMonitor')).toEqual([]);
    expect(ofKind(docs, 'HorizontalPodAutoscaler')).toEqual([]);
  });

  it('external services: egress to PostgreSQL and NATS by network, NATS over TLS, a disabled service left out', () => {
    const docs = rendered['external services'];
    const egress = ofKind(docs, 'NetworkPolicy').find((p) => p.metadata.name === 'rel-custodian-egress');
    const byPort = Object.fromEntries(egress.spec.egress.map((r: Any) => [r.ports[0].port, r.to]));
    expect(byPort[5432]).toEqual([{ ipBlock: { cidr: '10.0.16.0/24' } }]);
    expect(byPort[4222]).toEqual(['10.0.17.10/32', '10.0.17.11/32', '10.0.17.12/32'].map((cidr) => ({ ipBlock: { cidr } })));
    expect(ofKind(docs, 'ConfigMap')[0].data.NATS_URL).toBe('tls://nats.vpc.internal.example:4222');
    expect(ofKind(docs, 'Deployment').map(componentOf).sort()).toEqual(['approvals', 'audit', 'identity', 'objects']);
    expect(ofKind(docs, 'Job')).toHaveLength(4);
  });

  it.each([
    ['an unknown key', ['bogus=1'], "additional properties 'bogus' not allowed"],
    ['a typo in a nested key', ['services.identity.replica=3'], "additional properties 'replica' not allowed"],
    ['a writable root filesystem', ['securityContext.readOnlyRootFilesystem=false'], 'value must be true'],
    ['running as root', ['podSecurityContext.runAsNonRoot=false'], 'value must be true'],
    ['a service account token', ['serviceAccount.automountServiceAccountToken=true'], 'value must be false'],
    ['a digest that is not sha256', ['image.digest=latest'], "'latest' does not match pattern"],
    ['credentials in the NATS URL', ['nats.url=nats://user:pw@nats:4222'], 'does not match pattern'],
    ['a string where a number belongs', ['services.objects.replicas=two'], 'got string, want integer'],
    ['an unknown log level', ['logLevel=verbose'], 'value must be one of'],
  ])('values.schema.json rejects %s', (_what, sets, message) => {
    const r = helm(['template', 'rel', chartDir, ...sets.flatMap((s) => ['--set', s])]);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain(message);
  });

  it('refuses a NetworkPolicy egress rule that would allow everything', () => {
    const r = helm(['template', 'rel', chartDir, '--set', 'database.podSelector=null', '--set', 'database.cidrs=null']);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('an empty egress peer list would allow everything');
  });
});

describe('docs/deployment.md', () => {
  it('its Helm values reference is generated from the current values.schema.json (npm run helm:docs)', () => {
    const r = spawnSync(process.execPath, [path.join(root, 'scripts', 'helm-values-doc.mjs'), '--check'], { encoding: 'utf8' });
    expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: '' });
  });
});
