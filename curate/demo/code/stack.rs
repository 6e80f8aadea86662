/// A growable stack backed by a vector, with a bounded capacity.
pub struct BoundedStack<T> {
    items: Vec<T>,
    capacity: usize,
}

impl<T> BoundedStack<T> {
    pub fn new(capacity: usize) -> Self {
        BoundedStack { items: Vec::with_capacity(capacity), capacity }
    }

    /// Pushes an item, or gives it back when the stack is full.
    pub fn push(&mut self, item: T) -> Result<(), T> {
        if self.items.len() == self.capacity {
            return Err(item);
        }
        self.items.push(item);
        Ok(())
    }

    pub fn pop(&mut self) -> Option<T> {
        self.items.pop()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_past_capacity() {
        let mut s = BoundedStack::new(2);
        assert!(s.push(1).is_ok());
        assert!(s.push(2).is_ok());
        assert_eq!(s.push(3), Err(3));
        assert_eq!(s.pop(), Some(2));
    }
}
