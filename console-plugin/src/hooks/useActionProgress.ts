/* Follows the attach or detach the user started, from the live list of attachments (no polling):
 * the panel's text is recomputed whenever the watch delivers a change. */
import { useMemo, useState } from 'react';
import type { USBAttachment } from '../k8s/models';
import { attachProgress, detachProgress, type Progress } from '../k8s/progress';

export type Action =
  | { kind: 'attach'; name: string; vm: string; device: string; created: USBAttachment }
  | { kind: 'detach'; name: string; vm: string };

export const useActionProgress = (attachments: USBAttachment[]) => {
  const [action, setAction] = useState<Action>();
  // Whether the watch has shown the new attachment yet: until then its absence means "not seen
  // yet", afterwards it means "deleted".
  const [seen, setSeen] = useState<string>();
  const found = action && attachments.find((a) => a.metadata?.name === action.name);
  if (action?.kind === 'attach' && found && seen !== action.name) {
    setSeen(action.name);
  }
  const progress: Progress | undefined = useMemo(() => {
    if (!action) {
      return undefined;
    }
    if (action.kind === 'detach') {
      return detachProgress(found, action.vm);
    }
    const current = found ?? (seen === action.name ? undefined : action.created);
    return attachProgress(current, action.vm, action.device);
  }, [action, found, seen]);
  return {
    action,
    progress,
    start: setAction,
    clear: () => {
      setAction(undefined);
    },
  };
};
