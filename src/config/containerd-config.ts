// containerd's config.toml as Ferry needs it: the snippet `ferry install` prints, and the checks `ferry doctor`
// runs on an existing file (proxy plugin address, CRI snapshotter, snapshot annotations), for config v2 and v3.
import { parse as parseToml } from 'smol-toml';

export interface ContainerdFinding {
  ok: boolean;
  message: string;
  /** What to change when not ok. */
  fix?: string;
}

export interface ContainerdExpectations {
  /** The proxy plugin's name (= snapshotter name), `ferry`. */
  name: string;
  socketPath: string;
}

/** The lines to add to /etc/containerd/config.toml (config `version = 2`, containerd 1.6/1.7). */
export function containerdSnippet(e: ContainerdExpectations): string {
  return [
    '[proxy_plugins]',
    `  [proxy_plugins.${e.name}]`,
    '    type = "snapshot"',
    `    address = "${e.socketPath}"`,
    '',
    '[plugins."io.containerd.grpc.v1.cri".containerd]',
    `  snapshotter = "${e.name}"`,
    '  # CRI sends the image and layer labels Ferry mounts lazily only when this is false',
    '  disable_snapshot_annotations = false',
    '',
  ].join('\n');
}

function table(v: unknown): Record<string, unknown> | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
    ? (v as Record<string, unknown>)
    : undefined;
}

function at(root: unknown, path: readonly string[]): unknown {
  let v = root;
  for (const k of path) v = table(v)?.[k];
  return v;
}

/** Checks a containerd config's text; a parse failure is one failed finding. */
export function checkContainerdConfig(text: string, e: ContainerdExpectations): ContainerdFinding[] {
  let doc: Record<string, unknown>;
  try {
    doc = parseToml(text);
  } catch (err) {
    return [{ ok: false, message: `not valid TOML: ${err instanceof Error ? err.message : String(err)}` }];
  }
  const out: ContainerdFinding[] = [];
  const version = typeof doc['version'] === 'number' ? doc['version'] : 1;
  const plugin = table(at(doc, ['proxy_plugins', e.name]));
  if (plugin === undefined) {
    out.push({
      ok: false,
      message: `no [proxy_plugins.${e.name}] table: containerd does not know the ${e.name} snapshotter`,
      fix: `add the snippet printed by \`ferry install\` (proxy_plugins.${e.name})`,
    });
  } else {
    const type = plugin['type'];
    out.push(
      type === 'snapshot' || type === 'io.containerd.snapshotter.v1'
        ? { ok: true, message: `proxy_plugins.${e.name} is a snapshot plugin` }
        : {
            ok: false,
            message: `proxy_plugins.${e.name}.type is ${JSON.stringify(type)}`,
            fix: 'set type = "snapshot"',
          },
    );
    out.push(
      plugin['address'] === e.socketPath
        ? { ok: true, message: `proxy_plugins.${e.name}.address is ${e.socketPath}` }
        : {
            ok: false,
            message: `proxy_plugins.${e.name}.address is ${JSON.stringify(plugin['address'])}, ferry listens on ${e.socketPath}`,
            fix: `set address = "${e.socketPath}"`,
          },
    );
  }
  const disabled = Array.isArray(doc['disabled_plugins']) ? (doc['disabled_plugins'] as unknown[]) : [];
  const criName = version >= 3 ? 'io.containerd.cri.v1.images' : 'io.containerd.grpc.v1.cri';
  if (
    disabled.includes(criName) ||
    disabled.includes('io.containerd.grpc.v1.cri') ||
    disabled.includes('cri')
  ) {
    out.push({
      ok: true,
      message: 'the CRI plugin is disabled: only ctr/nerdctl pulls can use ferry (no kubelet)',
    });
    return out;
  }
  const cri =
    version >= 3
      ? table(at(doc, ['plugins', 'io.containerd.cri.v1.images']))
      : table(at(doc, ['plugins', 'io.containerd.grpc.v1.cri', 'containerd']));
  const where =
    version >= 3 ? `plugins."io.containerd.cri.v1.images"` : `plugins."io.containerd.grpc.v1.cri".containerd`;
  out.push(
    cri?.['snapshotter'] === e.name
      ? { ok: true, message: `CRI uses the ${e.name} snapshotter` }
      : {
          ok: false,
          message: `CRI snapshotter is ${JSON.stringify(cri?.['snapshotter'] ?? 'overlayfs')}: kubelet pulls will not be lazy`,
          fix: `set snapshotter = "${e.name}" under [${where}]`,
        },
  );
  out.push(
    cri?.['disable_snapshot_annotations'] === false
      ? { ok: true, message: 'CRI sends snapshot annotations (disable_snapshot_annotations = false)' }
      : {
          ok: false,
          message: 'CRI does not send the image/layer labels (disable_snapshot_annotations defaults to true)',
          fix: `set disable_snapshot_annotations = false under [${where}]`,
        },
  );
  if (version >= 3 && plugin !== undefined) {
    const exp = at(plugin, ['exports', 'enable_remote_snapshot_annotations']);
    out.push(
      exp === 'true'
        ? { ok: true, message: 'transfer service passes remote snapshot annotations' }
        : {
            ok: false,
            message:
              'containerd 2.x needs exports.enable_remote_snapshot_annotations = "true" on the proxy plugin',
            fix: `add [proxy_plugins.${e.name}.exports] enable_remote_snapshot_annotations = "true"`,
          },
    );
  }
  return out;
}
