import { Card, CardBody, CardTitle, Gallery, Title } from '@patternfly/react-core';
import type { FC } from 'react';
import { slots, type AttachmentRow } from '../../k8s/attachments';
import { PhaseLabel } from '../common/PhaseLabel';

/** The VM's four usbredir slots, by use. */
export const SlotsView: FC<{ rows: AttachmentRow[] }> = ({ rows }) => {
  const all = slots(rows);
  const used = all.filter((s) => s.attachment).length;
  return (
    <section data-test="slots">
      <Title headingLevel="h3">usbredir slots</Title>
      <p data-test="slots-used">
        {used} of {all.length} in use. KubeVirt does not say which slot a stream uses; a{' '}
        <code>virtctl usbredir</code> started by hand takes one too and is not shown here.
      </p>
      <Gallery hasGutter minWidths={{ default: '200px' }}>
        {all.map(({ position, attachment: a }) => (
          <Card key={position} isCompact data-test={`slot-${String(position)}`}>
            <CardTitle>slot {position}</CardTitle>
            <CardBody>
              {a ? (
                <>
                  <div>
                    <PhaseLabel phase={a.shownPhase} /> {a.device}
                  </div>
                  <div>held by {a.name}</div>
                  <div>
                    {a.toVM} to VM · {a.fromVM} from VM
                  </div>
                  {a.lastError && <div className="pf-v6-u-danger-color-100">{a.lastError}</div>}
                </>
              ) : (
                'free'
              )}
            </CardBody>
          </Card>
        ))}
      </Gallery>
    </section>
  );
};
