/* The console provides the SDK's hooks and functions at run time (module federation), so unit
 * tests get these stand-ins instead (jest's moduleNameMapper, jest.config.ts): a small store of
 * API objects that the tests fill with fixtures and change while a component is shown (the
 * watches re-render it, as the console's do), access reviews answered from the test's rules, and
 * k8sCreate/k8sDelete/k8sPatch that change the store (jest mocks: a test can make them refuse). */
import { useSyncExternalStore, type FC, type ReactNode } from 'react';
import type * as SDK from '@openshift-console/dynamic-plugin-sdk';

type Obj = SDK.K8sResourceCommon & { spec?: unknown; status?: unknown };
type Kind = string;

const objects = new Map<Kind, Obj[]>();
const errors = new Map<Kind, unknown>();
let access: (attrs: SDK.AccessReviewResourceAttributes) => boolean = () => true;
let version = 0;
const listeners = new Set<() => void>();
let counter = 0;

const changed = () => {
  version += 1;
  listeners.forEach((listener) => {
    listener();
  });
};

// jsdom has no structuredClone; API objects are JSON.
const clone = <T,>(value: T): T => JSON.parse(JSON.stringify(value)) as T;

const kindOf = (gvk?: SDK.K8sGroupVersionKind) => gvk?.kind ?? '';

/** Test helpers (not part of the SDK). */
export const fixtures = {
  reset: () => {
    objects.clear();
    errors.clear();
    access = () => true;
    counter = 0;
    changed();
  },
  /** Replace every object of `kind`. */
  set: (kind: Kind, items: Obj[]) => {
    objects.set(
      kind,
      items.map((i) => clone(i)),
    );
    changed();
  },
  /** Replace one object (matched by namespace and name), as a watch event would. */
  update: (kind: Kind, item: Obj) => {
    const same = (o: Obj) =>
      o.metadata?.name === item.metadata?.name &&
      o.metadata?.namespace === item.metadata?.namespace;
    const items = objects.get(kind) ?? [];
    objects.set(kind, [...items.filter((o) => !same(o)), clone(item)]);
    changed();
  },
  remove: (kind: Kind, name: string) => {
    objects.set(
      kind,
      (objects.get(kind) ?? []).filter((o) => o.metadata?.name !== name),
    );
    changed();
  },
  get: (kind: Kind): Obj[] => objects.get(kind) ?? [],
  fail: (kind: Kind, error: unknown) => {
    errors.set(kind, error);
    changed();
  },
  allow: (rule: (attrs: SDK.AccessReviewResourceAttributes) => boolean) => {
    access = rule;
    changed();
  },
};

const useVersion = () =>
  useSyncExternalStore(
    (listener) => {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    () => version,
  );

export const useK8sWatchResource = jest.fn((resource: SDK.WatchK8sResource | null) => {
  useVersion();
  if (!resource) {
    return [undefined, true, undefined];
  }
  const kind = kindOf(resource.groupVersionKind);
  const error = errors.get(kind);
  const items = (objects.get(kind) ?? []).filter(
    (o) => !resource.namespace || o.metadata?.namespace === resource.namespace,
  );
  if (resource.isList) {
    return [error ? [] : items, true, error];
  }
  const found = items.find((o) => o.metadata?.name === resource.name);
  if (error || !found) {
    return [{}, false, error ?? { code: 404, message: 'not found' }];
  }
  return [found, true, undefined];
});

export const useAccessReview = jest.fn((attrs: SDK.AccessReviewResourceAttributes) => {
  useVersion();
  return [access(attrs), false];
});

interface Options {
  model: SDK.K8sModel;
  data?: unknown;
  resource?: Obj;
}

const named = (model: SDK.K8sModel, data: Obj): Obj => {
  const meta = { ...(data.metadata ?? {}) };
  if (!meta.name) {
    counter += 1;
    meta.name = `${meta.generateName ?? 'x-'}${String(counter).padStart(5, 'f')}`;
  }
  meta.uid = `uid-${meta.name}`;
  meta.resourceVersion = '1';
  meta.creationTimestamp = new Date().toISOString();
  return { ...data, kind: model.kind, metadata: meta };
};

export const k8sCreate = jest.fn(({ model, data }: Options) => {
  const made = named(model, data as Obj);
  objects.set(model.kind, [...(objects.get(model.kind) ?? []), made]);
  changed();
  return Promise.resolve(clone(made));
});

export const k8sDelete = jest.fn(({ model, resource }: Options) => {
  fixtures.remove(model.kind, resource?.metadata?.name ?? '');
  return Promise.resolve({});
});

/** Applies add/replace/test of a JSON patch to the stored object (enough for the
 * plugin's patches; a failing test op is refused as the API server would). */
export const k8sPatch = jest.fn(({ model, resource, data }: Options) => {
  const stored = (objects.get(model.kind) ?? []).find(
    (o) =>
      o.metadata?.name === resource?.metadata?.name &&
      o.metadata?.namespace === resource?.metadata?.namespace,
  );
  if (!stored) {
    return Promise.reject(new Error('not found'));
  }
  const copy = clone(stored);
  for (const op of data as SDK.Patch[]) {
    const keys = op.path.split('/').slice(1);
    const last = keys.pop() ?? '';
    let at = copy as Record<string, unknown>;
    for (const key of keys) {
      at[key] ??= {};
      at = at[key] as Record<string, unknown>;
    }
    if (op.op === 'test' && JSON.stringify(at[last]) !== JSON.stringify(op.value)) {
      return Promise.reject(
        new Error('the object has been modified; please apply your changes to the latest version'),
      );
    }
    if (op.op === 'add' || op.op === 'replace') {
      at[last] = op.value;
    }
    if (!['test', 'add', 'replace'].includes(op.op)) {
      return Promise.reject(new Error(`${op.op} is not supported by this stand-in`));
    }
  }
  fixtures.update(model.kind, copy);
  return Promise.resolve(copy);
});

export const ListPageHeader: FC<{ title: string; children?: ReactNode }> = ({
  title,
  children,
}) => (
  <header>
    <h1>{title}</h1>
    {children}
  </header>
);

export const DocumentTitle: FC<{ children: string }> = () => null;
