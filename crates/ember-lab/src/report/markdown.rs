//! Markdown tables for reports: a header, rows of cells, and a cell's `|` escaped so that a
//! value (a JSON setup, an error message) cannot break the table.

/// A table under construction.
#[derive(Clone, Debug, Default)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// An empty table with the column titles `header`.
    pub fn new<S: Into<String>>(header: impl IntoIterator<Item = S>) -> Self {
        Self {
            header: header.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; missing cells are left empty, so a short row (a pending arm) stays a row.
    pub fn row<S: Into<String>>(&mut self, cells: impl IntoIterator<Item = S>) -> &mut Self {
        self.rows.push(cells.into_iter().map(Into::into).collect());
        self
    }

    /// Removes column `index` from the header and every row that reaches it.
    pub fn drop_column(&mut self, index: usize) -> &mut Self {
        for cells in std::iter::once(&mut self.header).chain(&mut self.rows) {
            if index < cells.len() {
                cells.remove(index);
            }
        }
        self
    }

    /// The table as Markdown, one line per row, ending in a newline.
    pub fn render(&self) -> String {
        let width = self.header.len();
        let line = |cells: &[String]| {
            let mut out = String::from("|");
            for i in 0..width {
                let cell = cells.get(i).map_or("", String::as_str);
                out += &format!(" {} |", cell.replace('|', "\\|").replace('\n', " "));
            }
            out + "\n"
        };
        let mut md = line(&self.header);
        md += &format!("|{}\n", "---|".repeat(width));
        for row in &self.rows {
            md += &line(row);
        }
        md
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_padded_and_pipes_escaped() {
        let mut table = Table::new(["arm", "value"]);
        table.row(["a", "1 | 2"]).row(["pending"]);
        assert_eq!(
            table.render(),
            "| arm | value |\n|---|---|\n| a | 1 \\| 2 |\n| pending |  |\n"
        );
    }
}
