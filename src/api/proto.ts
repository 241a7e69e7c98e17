// Loads Ferry's copies of containerd's (and, for tests, the CRI's) .proto files (proto/ at the package root) with
// proto-loader.
import { load, type Options, type PackageDefinition } from '@grpc/proto-loader';
import type { ServiceDefinition } from '@grpc/grpc-js';
import { fileURLToPath } from 'node:url';
import { FerryError } from '../errors.js';

/** proto/ beside dist/ and src/ (both two levels below the package root). */
export const PROTO_DIR = fileURLToPath(new URL('../../proto/', import.meta.url));

export const LOADER_OPTIONS: Options = {
  keepCase: true, // snake_case names as on the wire: created_at, update_mask
  longs: Number,
  enums: String,
  defaults: true,
  arrays: true,
  objects: true,
  includeDirs: [PROTO_DIR],
};

export const SNAPSHOTS_SERVICE = 'containerd.services.snapshots.v1.Snapshots';

/** A .proto file under proto/ (snapshots.proto, cri-api.proto), with the options above. */
export async function loadProto(file: string): Promise<PackageDefinition> {
  return load(file, LOADER_OPTIONS);
}

export async function loadSnapshotsProto(): Promise<PackageDefinition> {
  return loadProto('snapshots.proto');
}

export function serviceDefinition(def: PackageDefinition, name: string): ServiceDefinition {
  const service = def[name];
  if (service === undefined || 'format' in service)
    throw new FerryError('INTERNAL', `${name} is not a service in the loaded protos`);
  return service;
}
