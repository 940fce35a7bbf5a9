import { useEffect, useState } from 'react';

/** The current time, renewed every `everyMs` so ages (5m, 3h) stay true; the data itself comes
 * from watches, this only redraws the clock. */
export const useNow = (everyMs = 10_000): Date => {
  const [now, setNow] = useState(() => new Date());
  useEffect(() => {
    const timer = setInterval(() => {
      setNow(new Date());
    }, everyMs);
    return () => {
      clearInterval(timer);
    };
  }, [everyMs]);
  return now;
};
